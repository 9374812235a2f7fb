"""Templates shipped inside the package: the submission model.py and the plugin scaffold."""
