from migrc_sweep.cli import main

main()
