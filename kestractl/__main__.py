from kestractl.cli import main

main()
