"""From boxes to information: tracking, counting, lines, zones, rules and states, as events and stats."""
