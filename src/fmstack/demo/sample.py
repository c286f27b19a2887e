"""The demo's built-in dataset: customer-service requests labelled with their intent.

Written by fmstack itself (templates x slot values below), not copied from any dataset. The same seed
always gives the same file, so the demo's dataset version is reproducible. A few exact and near
duplicates are included on purpose, so that the demo's dedup step has something to do.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

TEMPLATES: dict[str, list[str]] = {
    "card_lost": [
        "I lost my {card} {when}",
        "my {card} was stolen {when}, please block it",
        "can you freeze my {card}? I can't find it",
        "someone took my wallet with the {card} inside",
        "I think I left my {card} at the {place}",
        "how do I report a missing {card}",
        "please cancel my {card}, it is gone",
    ],
    "card_not_arrived": [
        "my new {card} still hasn't arrived",
        "I ordered a {card} {when} and it is not here yet",
        "when will my {card} be delivered",
        "the {card} you sent never showed up",
        "is my replacement {card} in the post",
        "tracking for my {card} delivery please",
        "it has been weeks and no {card} in the mail",
    ],
    "refund_request": [
        "I want a refund for the {item} I returned",
        "the {shop} said they refunded me but I see nothing",
        "how long does a refund from {shop} take",
        "please give me my money back for the {item}",
        "I was charged for a {item} I cancelled, I need a refund",
        "where is my refund from {shop}",
        "can I get reimbursed for the broken {item}",
    ],
    "transfer_failed": [
        "my transfer to {person} failed",
        "the payment to {person} did not go through",
        "why was my bank transfer {when} declined",
        "I sent money to {person} but it bounced back",
        "transfer error when paying {person}",
        "the wire to my {account} account was rejected",
        "money never reached {person}, what happened",
    ],
    "change_address": [
        "I moved, how do I update my address",
        "please change my address to the new flat in {city}",
        "I need to update my postal address",
        "where can I edit my home address",
        "my address is wrong on the account, I live in {city} now",
        "update my contact details, new address in {city}",
        "how to change the address you send letters to",
        "I moved to {city} {when}, what do I need to update",
        "can I change the address on my {card}",
        "send my {card} to my new address in {city}",
    ],
    "balance_inquiry": [
        "what is my {account} balance",
        "how much money is in my {account} account",
        "show me my current balance",
        "can you tell me the balance of my {account}",
        "I want to check how much I have left",
        "balance on my {account} account {when}",
        "how much can I still spend this month",
    ],
    "exchange_rate": [
        "what rate do you use to convert {currency}",
        "how much is 100 euro in {currency}",
        "the exchange rate for {currency} looks wrong",
        "do you charge extra for paying in {currency}",
        "why did I get a bad rate in {currency}",
        "current {currency} exchange rate please",
        "how is the conversion to {currency} calculated",
    ],
    "close_account": [
        "I want to close my {account} account",
        "please delete my account",
        "how do I cancel my membership and close everything",
        "I am leaving, shut down my {account} account",
        "close my account and send the remaining money to {person}",
        "what do I need to do to terminate my account",
        "remove my {account} account permanently",
        "I no longer need my {account} account, close it {when}",
        "can {person} help me close my {account} account",
    ],
    "pin_reset": [
        "I forgot my PIN",
        "how do I reset the PIN of my {card}",
        "my PIN is blocked after three wrong tries",
        "can I change my {card} PIN in the app",
        "I need a new PIN for my {card}",
        "the {place} machine says my PIN is wrong",
        "unlock my PIN please",
        "I typed the wrong PIN at the {place} {when}",
        "can you send me a reminder of my {card} PIN",
        "my {card} PIN stopped working {when}",
    ],
    "dispute_charge": [
        "there is a payment to {shop} I don't recognise",
        "I was charged twice by {shop}",
        "a strange transaction appeared {when}",
        "I did not make this purchase at {shop}",
        "dispute a charge of 40 pounds from {shop}",
        "unknown card payment on my statement",
        "someone used my {card} at {shop} without permission",
    ],
}

SLOTS: dict[str, list[str]] = {
    "card": ["card", "debit card", "credit card", "virtual card", "bank card"],
    "when": ["yesterday", "last week", "this morning", "two days ago", "on Monday"],
    "place": ["restaurant", "ATM", "supermarket", "train station", "cash machine"],
    "item": ["jacket", "phone", "plane ticket", "concert ticket", "laptop"],
    "shop": ["the online shop", "the airline", "the hotel", "the grocery store", "a marketplace seller"],
    "person": ["my landlord", "my sister", "a friend", "my employer", "the plumber"],
    "account": ["savings", "current", "joint", "business", "checking"],
    "city": ["Leeds", "Lyon", "Porto", "Krakow", "Dublin"],
    "currency": ["dollars", "yen", "Swiss francs", "pounds", "zloty"],
}


def generate(per_intent: int = 60, seed: int = 7) -> list[tuple[str, str]]:
    """(text, intent) rows; ``per_intent`` distinct texts per intent where the templates allow."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for intent, templates in TEMPLATES.items():
        seen: set[str] = set()
        for _ in range(per_intent * 20):
            if len(seen) == per_intent:
                break
            text = rng.choice(templates).format(**{k: rng.choice(v) for k, v in SLOTS.items()})
            seen.add(text)
        rows += [(text, intent) for text in sorted(seen)]
    rng.shuffle(rows)
    # Duplicates on purpose: exact copies and copies that differ only in case and spacing.
    dupes = [rows[i] for i in range(0, len(rows), 25)]
    rows += dupes + [("  " + text.upper() + " ", intent) for text, intent in dupes[:5]]
    return rows


def write_csv(path: Path, per_intent: int = 60, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "intent"])
        writer.writerows(generate(per_intent, seed))
    return path
