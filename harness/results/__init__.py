"""What a run's figures become: terminal tables, MMAD's answers file, ablation deltas."""
