"""``python -m curriculum_cli`` runs the ``pepcurr`` command line."""

from curriculum_cli.cli import main

main()
