from pfunc.cli import main

main()
