"""Built-in plugins, each written exactly as a third-party plugin is."""
