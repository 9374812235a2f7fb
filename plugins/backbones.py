from codabench_kit import hookimpl
