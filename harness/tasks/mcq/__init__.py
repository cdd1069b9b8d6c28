"""Multiple choice (MMAD's format): its kind, the task that asks the questions, the official protocols' parsers and prompts, degraded images."""
