"""The shipped demo task: rare customer-service intents (see ``support_tickets``)."""
