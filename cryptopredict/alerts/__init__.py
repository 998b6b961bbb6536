"""Watch rules posted where users are: rules from `alerts.toml`, evaluated by training (states in the
artifact's `alerts.json`), delivered to Discord, Slack or JSON webhooks after a deploy
(`python -m cryptopredict.alerts --artifact DIR`). Standard library only, but for delivery's `requests`."""

from cryptopredict.alerts.evaluate import evaluate, refused
from cryptopredict.alerts.rules import AlertRuleError, Rule, load_rules, parse_rules
from cryptopredict.alerts.states import Alerts, RuleState, parse_alerts

__all__ = [
    "AlertRuleError",
    "Alerts",
    "Rule",
    "RuleState",
    "evaluate",
    "load_rules",
    "parse_alerts",
    "parse_rules",
    "refused",
]
