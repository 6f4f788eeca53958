from amms_cli.cli import main

main()
