"""The demo's built-in dataset: customer-service requests labelled with their intent, made to look like
real traffic rather than a template exercise.

Written by fmstack itself (phrasings with slot values, below), not copied from any dataset. What makes
it realistic, and the demo's accuracy informative:

- paraphrase families: each intent is asked in many ways, formal and casual, with greetings and
  sign-offs around the request;
- held-out phrasings: some ways of asking appear in the test split only, so the test measures how
  well the model generalises to wordings it never saw, not how well it memorised templates;
- seeded character-level typos (swapped, dropped, doubled or neighbouring keys) and lower-case,
  unpunctuated messages;
- overlapping intents: some requests plausibly belong to two intents (a stolen card *and* an unknown
  payment); each such row gets one of the two, as two annotators would disagree;
- a Zipf-like class imbalance: the most common intent is ~6x the rarest;
- a few exact and near duplicates, so the demo's dedup step has something to do.

Three files, ``train.csv``, ``validation.csv`` and ``test.csv``: ingest takes the split from the file
name. The same seed always gives the same files, so the demo's dataset version is reproducible.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

# Ways of asking seen in training (and in part of the test split), most common intent first.
PHRASINGS: dict[str, list[str]] = {
    "balance_inquiry": [
        "what is my {account} balance",
        "how much money is in my {account} account",
        "show me my current balance",
        "can you tell me the balance of my {account} account",
        "I want to check how much I have left",
        "balance on my {account} account {when}",
        "how much is left on my {account} account",
        "whats my balance right now",
    ],
    "card_lost": [
        "I lost my {card} {when}",
        "my {card} was stolen {when}, please block it",
        "can you freeze my {card}? I can't find it",
        "someone took my wallet with the {card} inside",
        "I think I left my {card} at the {place}",
        "how do I report a missing {card}",
        "please cancel my {card}, it is gone",
    ],
    "transfer_failed": [
        "my transfer to {person} failed",
        "the payment to {person} did not go through",
        "why was my bank transfer {when} declined",
        "I sent money to {person} but it bounced back",
        "transfer error when paying {person}",
        "money never reached {person}, what happened",
        "the transfer I made {when} was returned",
    ],
    "dispute_charge": [
        "there is a payment to {shop} I don't recognise",
        "I was charged twice by {shop}",
        "a strange transaction appeared {when}",
        "I did not make this purchase at {shop}",
        "dispute a charge of {amount} from {shop}",
        "unknown card payment on my statement",
    ],
    "refund_request": [
        "I want a refund for the {item} I returned",
        "{shop} said they refunded me but I see nothing",
        "how long does a refund from {shop} take",
        "please give me my money back for the {item}",
        "where is my refund from {shop}",
        "I returned the {item} {when}, when do I get the money",
    ],
    "card_not_arrived": [
        "my new {card} still hasn't arrived",
        "I ordered a {card} {when} and it is not here yet",
        "when will my {card} be delivered",
        "the {card} you sent never showed up",
        "is my replacement {card} in the post",
        "tracking for my {card} delivery please",
    ],
    "pin_reset": [
        "I forgot my PIN",
        "how do I reset the PIN of my {card}",
        "my PIN is blocked after three wrong tries",
        "can I change my {card} PIN in the app",
        "I need a new PIN for my {card}",
        "the {place} machine says my PIN is wrong",
    ],
    "exchange_rate": [
        "what rate do you use to convert {currency}",
        "how much is {amount} in {currency}",
        "the exchange rate for {currency} looks wrong",
        "do you charge extra for paying in {currency}",
        "current {currency} exchange rate please",
    ],
    "change_address": [
        "I moved, how do I update my address",
        "please change my address to the new flat in {city}",
        "I need to update my postal address",
        "where can I edit my home address",
        "my address is wrong on the account, I live in {city} now",
    ],
    "close_account": [
        "I want to close my {account} account",
        "please delete my account",
        "how do I cancel my membership and close everything",
        "I am leaving, shut down my {account} account",
        "what do I need to do to terminate my account",
    ],
}

# Ways of asking that appear in the test split only.
HELD_OUT: dict[str, list[str]] = {
    "balance_inquiry": [
        "could you let me know what funds are available in {account}",
        "am I overdrawn at the moment",
        "do I have enough in my {account} account to pay rent",
    ],
    "card_lost": [
        "my purse was nicked on the {place} with my {card} in it",
        "can't find my {card} anywhere, stop it before anyone uses it",
        "I dropped my {card} somewhere {when}",
    ],
    "transfer_failed": [
        "{person} says the money I sent {when} never landed",
        "payment to {person} keeps getting rejected, why",
        "the funds I wired came back to my account",
    ],
    "dispute_charge": [
        "who is {shop} and why did they take {amount} from me",
        "my statement shows a purchase I never authorised",
        "I've been billed for something I didn't buy",
    ],
    "refund_request": [
        "still waiting for {shop} to pay me back for the {item}",
        "the {item} went back weeks ago and no money yet",
        "can I get reimbursed for the broken {item}",
    ],
    "card_not_arrived": [
        "it has been weeks and no {card} in the mail",
        "the letter with my {card} never came",
        "how long does a new {card} take to reach me",
    ],
    "pin_reset": [
        "I typed the wrong code too many times and now the {card} is locked",
        "what's the way to get a fresh PIN",
        "can you send me a reminder of my {card} PIN",
    ],
    "exchange_rate": [
        "why did I get such a bad rate in {currency}",
        "how is the conversion to {currency} worked out",
        "what will I pay for {amount} converted to {currency}",
    ],
    "change_address": [
        "I've relocated to {city}, please send post there",
        "update my contact details, new place in {city}",
        "how to change the address you send letters to",
    ],
    "close_account": [
        "I'd like to stop banking with you altogether",
        "remove my {account} account permanently",
        "end my relationship with the bank and pay out what's left",
    ],
}

# Requests that plausibly belong to two intents; each row gets one of the two at random.
AMBIGUOUS: list[tuple[str, tuple[str, str]]] = [
    ("my {card} was stolen and someone paid {shop} with it", ("card_lost", "dispute_charge")),
    ("I closed my account but the refund from {shop} never came", ("refund_request", "close_account")),
    ("I moved to {city} and my new {card} never arrived", ("card_not_arrived", "change_address")),
    ("the transfer to {person} failed but the money left my balance", ("transfer_failed", "balance_inquiry")),
    ("I was charged {amount} in {currency} and the rate looks wrong", ("exchange_rate", "dispute_charge")),
    ("my new {card} came but the PIN does not work", ("pin_reset", "card_not_arrived")),
    ("{shop} charged me twice, I want my money back", ("dispute_charge", "refund_request")),
]

SLOTS: dict[str, list[str]] = {
    "card": ["card", "debit card", "credit card", "virtual card", "bank card", "visa", "mastercard"],
    "when": ["yesterday", "last week", "this morning", "two days ago", "on Monday", "last night", "today"],
    "place": ["restaurant", "ATM", "supermarket", "train station", "cash machine", "bus", "gym"],
    "item": ["jacket", "phone", "plane ticket", "concert ticket", "laptop", "sofa", "pair of shoes"],
    "shop": [
        "the online shop",
        "the airline",
        "the hotel",
        "the grocery store",
        "a marketplace seller",
        "Amazon",
    ],
    "person": ["my landlord", "my sister", "a friend", "my employer", "the plumber", "my mum"],
    "account": ["savings", "current", "joint", "business", "checking"],
    "city": ["Leeds", "Lyon", "Porto", "Krakow", "Dublin", "Seville"],
    "currency": ["dollars", "yen", "Swiss francs", "pounds", "zloty", "euros"],
    "amount": ["40 pounds", "100 euro", "$25", "12.99", "two hundred dollars"],
}

OPENERS = ["", "", "", "", "hi, ", "hello, ", "hey ", "good morning, ", "excuse me, ", "quick question: "]
CLOSERS = ["", "", "", "", " please", " thanks", "?", " asap", " !!", " thank you", " - can you help"]
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")

# Rows per split across all intents; intent k (most common first) gets a share ~ 1 / (k + 1) ** 0.8.
SIZES = {"train": 440, "validation": 60, "test": 240}
HELD_OUT_SHARE = 0.5  # of the test rows, asked in held-out phrasings
AMBIGUOUS_SHARE = 0.06
TYPO_RATE = 0.3


def zipf_counts(total: int, intents: list[str], exponent: float = 0.8) -> dict[str, int]:
    """``total`` rows shared out with weights 1 / rank ** exponent (largest remainder, at least 1)."""
    weights = [1 / (rank + 1) ** exponent for rank in range(len(intents))]
    quota = [total * w / sum(weights) for w in weights]
    counts = [max(1, int(q)) for q in quota]
    by_remainder = sorted(range(len(intents)), key=lambda i: int(quota[i]) - quota[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return dict(zip(intents, counts, strict=True))


def neighbour_key(ch: str) -> str:
    """A key next to ``ch`` on the same row of a QWERTY keyboard (``ch`` if it is not a letter)."""
    for row in KEYBOARD_ROWS:
        at = row.find(ch.lower())
        if at >= 0:
            return row[at + 1] if at + 1 < len(row) else row[at - 1]
    return ch


def typo(text: str, rng: random.Random) -> str:
    """One character-level slip at a random letter: swap, drop, double or a neighbouring key."""
    letters = [i for i, ch in enumerate(text[:-1]) if ch.isalpha()]
    if not letters:
        return text
    i = rng.choice(letters)
    kind = rng.choice(("swap", "drop", "double", "neighbour"))
    if kind == "swap" and text[i] != text[i + 1]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    if kind == "neighbour":
        return text[:i] + neighbour_key(text[i]) + text[i + 1 :]
    return text[:i] + text[i] + text[i:]  # doubled (also a swap of two equal letters)


def noisy(text: str, rng: random.Random) -> str:
    """A request as people type it: greetings, sign-offs, casing, dropped punctuation, typos."""
    text = rng.choice(OPENERS) + text + rng.choice(CLOSERS)
    style = rng.random()
    if style < 0.3:
        text = text.lower().replace(",", "").replace("'", "")
    elif style < 0.4:
        text = text[:1].upper() + text[1:] + ("." if text[-1].isalnum() else "")
    while rng.random() < TYPO_RATE:
        text = typo(text, rng)
    return text


def fill(template: str, rng: random.Random) -> str:
    return template.format(**{k: rng.choice(v) for k, v in SLOTS.items()})


def _rows(split: str, rng: random.Random) -> list[tuple[str, str]]:
    intents = list(PHRASINGS)
    rows = []
    for intent, count in zipf_counts(SIZES[split], intents).items():
        for _ in range(count):
            if rng.random() < AMBIGUOUS_SHARE:
                mixed = [(t, pair) for t, pair in AMBIGUOUS if intent in pair]
                if mixed:
                    template, pair = rng.choice(mixed)
                    rows.append((noisy(fill(template, rng), rng), rng.choice(pair)))
                    continue
            held_out = split == "test" and rng.random() < HELD_OUT_SHARE
            template = rng.choice(HELD_OUT[intent] if held_out else PHRASINGS[intent])
            rows.append((noisy(fill(template, rng), rng), intent))
    rng.shuffle(rows)
    return rows


def generate(seed: int = 7) -> dict[str, list[tuple[str, str]]]:
    """(text, intent) rows per split (train, validation, test)."""
    rng = random.Random(seed)
    splits = {split: _rows(split, rng) for split in SIZES}
    # Duplicates on purpose: exact copies and copies that differ only in case and spacing.
    train = splits["train"]
    copies = [train[i] for i in range(0, len(train), 25)]
    train += copies + [("  " + text.upper() + " ", intent) for text, intent in copies[:5]]
    return splits


def write_csv(folder: Path, seed: int = 7) -> list[Path]:
    """``folder``/train.csv, validation.csv and test.csv (columns text, intent)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, rows in generate(seed).items():
        path = folder / f"{split}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "intent"])
            writer.writerows(rows)
        paths.append(path)
    return paths
