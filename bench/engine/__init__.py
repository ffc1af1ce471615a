"""The training engine: budgets, the budgeted training loop, checkpoints and resume."""
