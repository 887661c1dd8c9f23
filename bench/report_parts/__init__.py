"""The parts of `bench/report.py`: each measures one thing side by side and writes bench/results/PART.json."""
