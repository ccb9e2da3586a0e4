from pfunc.cli.entry import main

main()
