from moeguard.cli import main

main()
