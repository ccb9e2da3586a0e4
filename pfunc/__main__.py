from pfunc.cli.commands import main

main()
