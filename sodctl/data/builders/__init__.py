"""Builders of the datasets at the paper's scale (``sodctl data fetch | rl | sft | hints |
inspect | stats``): see ``common`` for what they share and ``schema`` for what they write."""
