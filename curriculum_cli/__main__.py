"""``python -m curriculum_cli`` runs the ``pepcurr`` command line."""

from curriculum_cli.cli.app import main

main()
