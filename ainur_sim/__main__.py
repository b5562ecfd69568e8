"""``python -m ainur_sim [OVERRIDES…]`` — the same as the ``ainur-sim`` command (e.g. from a notebook,
where the venv's scripts may not be on ``PATH``)."""

from ainur_sim.cli import main

if __name__ == "__main__":
    main()
