"""``python -m zoo``: the CLI (this is also what ``torchrun -m zoo`` runs)."""

from zoo.cli import main

if __name__ == "__main__":
    main()
