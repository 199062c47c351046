from parallel_r1.cli import main

main()
