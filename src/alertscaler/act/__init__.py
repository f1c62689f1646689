"""Acting on signals: turning stored notifications into decisions, and decisions into provider actions."""
