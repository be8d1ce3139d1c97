from rtbuild.cli._main import run

run()  # the console script's entry point: exits with the command's code
