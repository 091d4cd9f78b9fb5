from kestractl.cli.app import main

main()
