from codabench_kit.cli import main

main()
