"""Business logic, testable without Telegram: handlers parse, call a service, reply."""
