"""Pure values shared by every stage: alerts, matchers, policies, decisions, actions, errors. No I/O."""
