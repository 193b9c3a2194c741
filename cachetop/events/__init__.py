"""Events: what happened in the fleet (status changes, restarts, thresholds, actions, alerts)."""
