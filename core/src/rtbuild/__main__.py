from rtbuild.cli import run

run()  # the console script's entry point: exits with the command's code
