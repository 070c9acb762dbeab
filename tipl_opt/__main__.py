from tipl_opt.cli import main

main()
