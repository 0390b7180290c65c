"""What an operator sees of a running bot: its metrics (metrics.py), its log lines (logs.py) and
what the current task is handling (scope.py). Below the Telegram edge, above nothing of ours."""
