"""Deterministic demo traffic for `manage.py load_demo`, and the demo accounts.

`generate` builds what a newcomer sees first in every screen: a few thousand interactions
of a fictional SaaS company ("Acme Cloud") over the past six weeks, as plain payloads in the
ingest API's shapes, and the feedback its users left. Everything comes from one
`random.Random(seed)` and is placed relative to a `reference` time, the end of the window,
so a seed and a reference give the same output byte for byte. The reference defaults to the
constant `REFERENCE`; `reference_before(now)` moves it forward by whole weeks, which moves
every timestamp by the same whole weeks and changes nothing else (the weekday and hour
patterns, and so every text, stay as they are). Any other reference gives other data under
the same interaction ids: the interaction ids depend on `n_interactions` alone.

Answers are assembled from per-topic sentence pools with slot values (names, files, plans,
numbers), not from whole canned answers: two answers on the same topic share a skeleton but
differ in enough sentences and identifiers that near-duplicate detection (character
5-shingles, Jaccard 0.9) keeps them apart, while genuine repeats still occur now and then,
as they do in production.

Edits come in the three flavours curation must tell apart, measured as character similarity
`1 - Levenshtein(final, response) / max(len)` (the edit-band measure):
- typo fixes (> 0.95): the model's answer carried a misspelling, which the user fixed;
- substantial rewrites (0.3 to 0.9, checked for word similarity too): the user deleted and
  added sentences on the same topic; the useful preference pairs;
- complete rewrites (< 0.3): the user threw the answer away and wrote their own.

A few edits are toxic (an insult pasted into an otherwise in-band edit, so only the toxicity
filter can catch them) and a few texts carry fake personal data from the `PII_*` pools.

Both returned lists are in delivery order. A few interactions with feedback are delivered
late (moved to the end of the interaction list), so a loader that sends the two lists side
by side in proportional slices sends their feedback first; a few feedback events name
interactions that never arrive (`MISSING_ID`).

`demo_users_create` makes the demo accounts; later roles and groups belong there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random

import Levenshtein

DEMO_SOURCE = "demo-app"
DEMO_TOKEN_NAME = "demo"  # noqa: S105 (a name, not a secret)
DEMO_TOKEN_SCOPES = ("ingest", "export")

WINDOW_DAYS = 42
ROLLOUT_DAYS = 21
# The end of the demo's window: a constant, so the demo's texts (and everything a test
# builds on them) are the same on every day and at every hour.
REFERENCE = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
WEEK = timedelta(weeks=1)
OLD_MODEL = "acme-chat-2025-09"
NEW_MODEL = "acme-chat-2025-11"
# The rare stratum (sql) is there so stratified sampling has a small group to protect.
TASK_WEIGHTS = {"code_help": 0.37, "summarisation": 0.27, "support": 0.34, "sql": 0.02}
TASK_TYPES = tuple(TASK_WEIGHTS)

INTERACTION_ID = "demo-i-{n:05d}"
FEEDBACK_ID = "demo-f-{n:05d}"
MISSING_ID = "demo-i-missing-{n:03d}"

FEEDBACK_RATE = 0.35
PII_RATE = 0.03
TOXIC_EDIT_RATE = 0.02
LATE_RATE = 0.01
ORPHAN_RATE = 0.005

TYPO_MIN = 0.95
BAND_LOW, BAND_HIGH = 0.3, 0.9
REWRITE_MAX = 0.3

# Fake, reserved or published test values only: example.* domains (RFC 2606), 555-01xx
# numbers (reserved for fiction in North America), Ofcom's drama range, card-network test
# numbers (Luhn-valid, never issued).
PII_PHONES = ("+1 415 555 0134", "+1 415 555 0199", "+1 (212) 555-0147", "+44 20 7946 0958")
PII_CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4242 4242 4242 4242")
PII_EMAIL_DOMAINS = ("example.com", "example.org")

# Mild and obviously staged, so the demo shows the toxicity filter without showing anyone
# real abuse.
TOXIC_LINES = (
    "This is a stupid question, you idiot.",
    "Read the docs next time, you moron.",
    "Only an idiot would need this explained.",
    "What a dumb question. Figure it out yourself, idiot.",
    "Stop wasting my time with stupid questions, you clown.",
)

# Published demo defaults for a local demo; the environment overrides them.
DEFAULT_ADMIN_PASSWORD = "flywheel-admin-demo"  # noqa: S105
DEFAULT_ANNOTATOR_PASSWORD = "flywheel-annotator-demo"  # noqa: S105
ADMIN_PASSWORD_ENV = "FLYWHEEL_DEMO_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
ANNOTATOR_PASSWORD_ENV = "FLYWHEEL_DEMO_ANNOTATOR_PASSWORD"  # noqa: S105 (a variable name)
ADMIN_USERNAME = "admin"
ANNOTATOR_USERNAME = "annotator"

NAIVE_TIME = "{name} must be timezone-aware (for example datetime.now(UTC))"
BAD_COUNT = "n_interactions must be at least 1, got {n}"
WEAK_PASSWORD = "The demo password for {username!r} is not accepted: {problems}"  # noqa: S105


# --- slot values ------------------------------------------------------------------

FIRST = (
    "Jane", "Sam", "Priya", "Mateo", "Aisha", "Lukas", "Mei", "Tom", "Olga", "Kwame", "Sofia",
    "Daniel", "Yuki", "Fatima", "Noah", "Chloe", "Ravi", "Elena", "Omar", "Grace", "Jonas",
    "Leila", "Marco", "Hannah", "Tariq", "Ingrid", "Diego", "Nora",
)  # fmt: skip
LAST = (
    "Doe", "Lee", "Patel", "Garcia", "Khan", "Schmidt", "Chen", "Novak", "Mensah", "Rossi",
    "Kim", "Okafor", "Silva", "Berg", "Murphy", "Haddad", "Nakamura", "Dubois", "Walsh",
    "Ivanova", "Costa", "Lindqvist",
)  # fmt: skip
COMPANIES = (
    "Northwind Traders", "Globex", "Initech", "Umbrella Logistics", "Stark Retail", "Wayne Foods",
    "Hooli", "Vandelay Imports", "Soylent Labs", "Tyrell Health", "Cyberdyne Freight",
    "Wonka Confectionery", "Pied Piper", "Massive Dynamic", "Blue Sun Energy",
)  # fmt: skip
WORKSPACES = (
    "acme-design", "northwind-ops", "globex-finance", "initech-qa", "hooli-growth",
    "stark-retail-eu", "pied-piper-core", "wayne-foods-hq", "tyrell-clinical", "blue-sun-data",
)  # fmt: skip
PROJECTS = (
    "Atlas", "Beacon", "Cobalt", "Drift", "Ember", "Falcon", "Granite", "Harbor", "Juniper",
    "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchid", "Quartz",
)  # fmt: skip
TEAMS = (
    "billing", "search", "mobile", "data platform", "checkout", "onboarding", "payments",
    "identity", "notifications", "analytics", "growth", "infrastructure",
)  # fmt: skip
FEATURES = (
    "saved filters", "bulk export", "dark mode", "audit log", "usage-based billing", "SAML login",
    "offline sync", "scheduled reports", "custom roles", "webhook retries", "team dashboards",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
PLANS = ("Starter", "Team", "Business", "Enterprise")
IDPS = ("Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin", "JumpCloud")
CSV_FILES = (
    "orders.csv", "customers_2025.csv", "export/events.csv", "data/invoices.csv", "signups.csv",
    "inventory.csv", "reports/churn.csv", "payments_q3.csv",
)  # fmt: skip
COLUMNS = ("email_verified", "order_id", "country", "plan", "amount", "created_at", "sku")
VARS = ("rows", "records", "items", "entries", "orders", "users", "events", "results")
ENV_VARS = ("DATABASE_URL", "API_TIMEOUT", "LOG_LEVEL", "CACHE_TTL", "FEATURE_FLAGS")
SERVICES = (
    "checkout-api", "search-indexer", "auth-gateway", "notification-worker", "billing-sync",
    "image-resizer", "report-builder",
)  # fmt: skip
ROLES = ("backend engineer", "product designer", "data analyst", "SRE", "engineering manager")
TITLES = ("Head of Operations", "CTO", "IT Manager", "VP Finance", "Procurement Lead")
COMPETITORS = ("Initrode", "Contoso Cloud", "Fabrikam Suite")
DICT_KEYS = ("alice", "bob", "eu", "us", "apac", "draft", "beta", "prod", "dev", "sku_1")
EXTS = ("py", "js", "ts", "md", "yaml", "go")
RENAMES = (
    ("getUser", "fetchUser"), ("old_client", "http_client"), ("utils", "helpers"),
    ("v1/orders", "v2/orders"), ("colour", "color"), ("TODO", "FIXME"),
)  # fmt: skip


def _slots(rng: Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    p1, p2, p3 = rng.sample(FIRST, 3)
    plan_a, plan_b = rng.sample(PLANS, 2)
    old, new = rng.choice(RENAMES)
    feature, feature2 = rng.sample(FEATURES, 2)
    return {
        "first": first,
        "last": last,
        "p1": p1,
        "p2": p2,
        "p3": p3,
        "company": rng.choice(COMPANIES),
        "contact": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "title": rng.choice(TITLES),
        "workspace": rng.choice(WORKSPACES),
        "project": rng.choice(PROJECTS),
        "team": rng.choice(TEAMS),
        "feature": feature,
        "feature2": feature2,
        "day": rng.choice(WEEKDAYS),
        "day2": rng.choice(WEEKDAYS),
        "month": rng.choice(MONTHS),
        "plan_a": plan_a,
        "plan_b": plan_b,
        "idp": rng.choice(IDPS),
        "invoice": f"INV-2025-{rng.randint(1000, 9999)}",
        "ticket": f"#{rng.randint(18000, 48000)}",
        "seats": str(rng.choice((5, 8, 10, 12, 15, 20, 25, 40, 50))),
        "used": str(rng.choice((2, 3, 4, 6, 7))),
        "pct": str(rng.choice((40, 55, 60, 70, 75, 80, 85, 90))),
        "err_pct": str(rng.choice((2, 4, 7, 12, 18, 25, 31))),
        "minutes": str(rng.choice((12, 18, 25, 34, 41, 47, 58, 73, 95))),
        "detect": str(rng.choice((3, 4, 6, 9, 14, 22))),
        "budget": f"{rng.choice((4, 6, 8, 12, 15, 18))},{rng.choice(('000', '500'))}",
        "quarter": rng.choice(("Q1", "Q2", "Q3", "Q4")),
        "role": rng.choice(ROLES),
        "service": rng.choice(SERVICES),
        "version": f"{rng.randint(3, 5)}.{rng.randint(0, 19)}.{rng.randint(0, 9)}",
        "competitor": rng.choice(COMPETITORS),
        "csv": rng.choice(CSV_FILES),
        "col": rng.choice(COLUMNS),
        "var": rng.choice(VARS),
        "env": rng.choice(ENV_VARS),
        "ext": rng.choice(EXTS),
        "old": old,
        "new": new,
        "k": str(rng.choice((3, 3, 4, 5))),
        "ndays": str(rng.choice((7, 14, 30, 90))),
        "nmonths": str(rng.choice((3, 6, 12))),
        "top": str(rng.choice((5, 10, 20))),
        "n_users": str(rng.choice((120, 240, 310, 480, 650, 1200))),
        "sat": str(rng.choice((61, 68, 72, 77, 83))),
        "renewal": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
        "inc": f"INC-{rng.randint(200, 999)}",
        "ms": str(rng.choice((250, 400, 800, 1500, 3000))),
    }


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def _fill(template: str, slots: Mapping[str, str]) -> str:
    # {{name}} rather than str.format: code samples are full of single braces.
    return _SLOT.sub(lambda m: slots[m[1]], template)


# --- content: support ----------------------------------------------------------------


@dataclass(frozen=True)
class SupportTopic:
    key: str
    questions: tuple[str, ...]
    acks: tuple[str, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    button: str
    complaints: tuple[str, ...]
    own: tuple[str, ...]


SUPPORT_SYSTEM = {
    OLD_MODEL: "You are the support assistant for Acme Cloud. Answer customer questions "
    "politely and accurately. Use numbered steps for instructions.",
    NEW_MODEL: "You are Acme Cloud's support assistant. Be concise, accurate and friendly. Give "
    "numbered steps for anything the customer has to do, and never promise refunds or "
    "exceptions: route those to a human agent.",
}

SUPPORT_TOPICS = (
    SupportTopic(
        "password_reset",
        (
            "How do I reset my password?",
            "I forgot my password and the reset email never arrives. What should I do?",
            "The password reset link says it has expired. How do I get a new one?",
            "Can't sign in to {{workspace}}, it keeps saying my password is wrong.",
            "hi, locked out of my account after too many attempts, how long do I have to wait?",
        ),
        (
            "Sorry you're locked out, let's get you back in.",
            "Resetting your password only takes a minute.",
            "Reset links are only valid for a short time, so it's easiest to request a new one.",
        ),
        (
            "Open the sign-in page and click **Forgot password?** under the password field.",
            "Enter the email address you use for Acme Cloud and press **Send reset link**.",
            "Check your inbox (and the spam folder) for a message from Acme Cloud; it usually "
            "arrives within two minutes.",
            "Click the link in that email within 30 minutes and choose a new password.",
            "Sign in again with the new password; other devices will be signed out.",
        ),
        (
            "After five failed attempts the account is locked for 15 minutes; a successful "
            "reset unlocks it straight away.",
            "If your company signs in through single sign-on, the password is managed by your "
            "identity provider and has to be reset there.",
            "Only the most recent reset link works, so if you requested several, use the "
            "newest email.",
        ),
        "",  # on the sign-in page, not in settings: no "where is the button" follow-up
        (
            "The reset email still never arrives, this didn't help.",
            "We use SSO, so none of these steps apply to us.",
        ),
        (
            "I've triggered a new reset link from our side. It's valid for an hour; if it "
            "doesn't show up, tell me and I'll check whether your mail server is bouncing us.",
            "You're on single sign-on, so your password lives with your IT team, not with us. "
            "Ask them to reset it and then use **Sign in with SSO**.",
        ),
    ),
    SupportTopic(
        "plan_change",
        (
            "How do I upgrade from {{plan_a}} to {{plan_b}}?",
            "Will I be charged twice if I switch to the {{plan_b}} plan in the middle of the "
            "month?",
            "We want to move workspace {{workspace}} to {{plan_b}}. What happens to our "
            "current billing period?",
            "How can I downgrade to {{plan_a}} without losing our data?",
        ),
        (
            "You can change plans yourself at any time.",
            "Switching plans is self-serve and takes effect immediately.",
            "Good news: you're never charged twice for the same period.",
        ),
        (
            "Go to **Settings → Billing** in workspace {{workspace}}.",
            "Click **Change plan** and pick {{plan_b}}.",
            "Review the prorated amount shown on the confirmation screen.",
            "Confirm with **Update plan**; the new limits apply straight away.",
            "You'll get an updated invoice by email within a few minutes.",
        ),
        (
            "When you upgrade mid-cycle we credit the unused part of your current plan and "
            "charge the difference, so the first invoice is smaller than usual.",
            "Downgrades take effect at the end of the current billing period, and nothing is "
            "deleted: features above the new plan become read-only.",
            "Only workspace Owners and Billing admins can see the **Change plan** button.",
        ),
        "Change plan",
        (
            "This is wrong: downgrades are not immediate on our account.",
            "The Billing page looks completely different for us.",
        ),
        (
            "I've moved {{workspace}} to {{plan_b}} for you and applied the credit for the "
            "unused days. The adjusted invoice is on its way.",
            "Plan changes on annual contracts go through your account manager, not the Billing "
            "page. I've asked them to reach out today.",
        ),
    ),
    SupportTopic(
        "refund",
        (
            "I was charged for {{seats}} seats but we only use {{used}}. Can I get a refund "
            "for invoice {{invoice}}?",
            "Why was I charged twice this month? Invoice {{invoice}} looks like a duplicate.",
            "We cancelled last week but still got billed. How do I get my money back?",
        ),
        (
            "I'm sorry about the unexpected charge.",
            "Thanks for flagging this, billing mistakes are frustrating.",
            "Let's sort out that invoice.",
        ),
        (
            "Open **Settings → Billing → Invoices** and find invoice {{invoice}}.",
            "Click **Report a problem** next to it and choose the reason that fits best.",
            "Reduce the seat count under **Settings → Members** so the next invoice is correct.",
            "Our billing team reviews requests within two business days and replies by email.",
        ),
        (
            "Refunds go back to the original payment method and usually show up after 5 to 10 "
            "business days.",
            "Seats are billed for the whole period once they are added, so removing people "
            "mid-month lowers the next invoice rather than the current one.",
            "If the charge was a true duplicate, the second payment is usually voided "
            "automatically within 24 hours.",
        ),
        "Report a problem",
        (
            "Please don't tell customers to wait two days, we can refund on the spot.",
            "There is no Report a problem button on invoices.",
        ),
        (
            "I've refunded the {{seats}}-seat difference on {{invoice}} to your card. You'll "
            "see it in 5 to 10 business days, sorry again for the trouble!",
            "The second charge was an authorisation hold, not a payment; your bank will drop it "
            "in a few days without you doing anything.",
        ),
    ),
    SupportTopic(
        "data_export",
        (
            "How can I export all my projects to CSV?",
            "Is there a way to export everything from {{workspace}} before our contract ends?",
            "The export button gives me a zip with JSON files. Can I get CSV instead?",
        ),
        (
            "You can export your data whenever you like.",
            "Exports are available on every plan.",
            "Happy to walk you through the export.",
        ),
        (
            "Go to **Settings → Data → Export**.",
            "Choose **All projects** or pick the projects you need.",
            "Select **CSV** as the format (JSON is the default).",
            "Click **Start export**; large workspaces can take a few minutes.",
            "Download the file from the link we email you; it stays valid for seven days.",
        ),
        (
            "Attachments are exported as a separate archive because they can be very large.",
            "Each project becomes one CSV file, with comments in a second file linked by id.",
            "Admins can also export through the API if you need it on a schedule.",
        ),
        "Start export",
        (
            "CSV export doesn't include comments at all, this answer is misleading.",
            "The export link expired after 24 hours, not seven days.",
        ),
        (
            "I've started a full export of {{workspace}} on our side and will send you the "
            "download link as soon as it's ready, most likely within the hour.",
            "For a one-off migration the API is the better route: the CSV export leaves out "
            "attachments and custom fields.",
        ),
    ),
    SupportTopic(
        "invite",
        (
            "How do I add {{seats}} people from my team to workspace {{workspace}}?",
            "I invited a colleague yesterday but they never got the email.",
            "Can I invite people without giving them admin rights?",
        ),
        (
            "Adding teammates is quick.",
            "You can invite people from the Members page.",
            "Invitations sometimes get caught by spam filters, so let's check a few things.",
        ),
        (
            "Open **Settings → Members** and click **Invite**.",
            "Paste one email address per line, or upload a CSV with a column named email.",
            "Pick a role for them: Member, Admin or Viewer.",
            "Press **Send invitations**; each person gets an email with a join link.",
            "Pending invitations appear at the bottom of the list, where you can resend them.",
        ),
        (
            "Invitation links expire after 14 days.",
            "Viewers don't count towards paid seats.",
            "If your company restricts sign-ups to your domain, people outside it can't join.",
        ),
        "Invite",
        (
            "Viewers do count as seats on the Team plan, please fix this.",
            "The invite CSV needs a header called email_address, not email.",
        ),
        (
            "I've resent the invitation to your colleague from our side and whitelisted your "
            "domain, so it should arrive in a minute.",
            "Since you're on SSO, new people are added automatically the first time they sign "
            "in; no invitation is needed.",
        ),
    ),
    SupportTopic(
        "sso",
        (
            "We use {{idp}}. How do I set up SSO for {{workspace}}?",
            "Is SAML single sign-on available on the {{plan_a}} plan?",
            "After enabling SSO, half of our users get 'invalid audience'. What did we miss?",
        ),
        (
            "Single sign-on is configured in your workspace security settings.",
            "SSO setup usually takes about 15 minutes.",
            "That error almost always comes from a mismatched setting between the two sides.",
        ),
        (
            "In Acme Cloud, open **Settings → Security → Single sign-on**.",
            "Copy the ACS URL and Entity ID shown there.",
            "In {{idp}}, create a new SAML application and paste both values.",
            "Download the metadata XML from {{idp}} and upload it back in Acme Cloud.",
            "Click **Test connection** before you switch on **Require SSO**.",
        ),
        (
            "SSO is part of the Business and Enterprise plans.",
            "Keep one admin account with a password until you've confirmed SSO works, so you "
            "can't lock yourself out.",
            "An 'invalid audience' error means the Entity ID in {{idp}} doesn't match ours "
            "exactly, including the trailing slash.",
        ),
        "Configure SSO",
        (
            "The ACS URL is not on that page any more.",
            "We are on Team and SSO works for us, so the plan info is wrong.",
        ),
        (
            "I've looked at your SSO logs: {{idp}} is sending the Entity ID without the trailing "
            "slash. Add it in the app settings there and the error goes away.",
            "For {{idp}} we have a prebuilt app in their catalogue, which is much easier than a "
            "manual SAML setup. Search for Acme Cloud there.",
        ),
    ),
    SupportTopic(
        "rate_limit",
        (
            "Our integration keeps getting HTTP 429 from the API. What are the limits?",
            "What's the API rate limit on {{plan_b}}?",
            "We sync {{workspace}} every five minutes and get throttled. How do we avoid it?",
        ),
        (
            "A 429 means the integration hit the rate limit.",
            "Rate limits depend on your plan.",
            "Let's make your sync play nicely with the limits.",
        ),
        (
            "Read the `Retry-After` header on the 429 response and wait that many seconds.",
            "Back off exponentially if you get several 429s in a row.",
            "Use the bulk endpoints instead of one request per record.",
            "Check **Settings → API → Usage** to see which token is making the most calls.",
            "Subscribe to webhooks rather than polling for changes.",
        ),
        (
            "Limits are per token: 600 requests per minute on Business and 120 on Team.",
            "Bursts are allowed up to twice the per-minute limit for a few seconds.",
            "Enterprise customers can ask for a higher limit through their account manager.",
        ),
        "Usage",
        (
            "The limits quoted are out of date.",
            "We already use Retry-After, the problem is the burst limit.",
        ),
        (
            "I've looked at your token's usage: almost all calls are list requests without a "
            "page size. Set limit=200 and you'll make a fraction of the calls.",
            "We had a bug in the rate limiter on {{day}} that throttled some tokens too early. "
            "It's fixed; you shouldn't see this again.",
        ),
    ),
    SupportTopic(
        "two_factor",
        (
            "I lost my phone and can't get my 2FA codes. How do I get into my account?",
            "How do I turn on two-factor authentication for everyone in {{workspace}}?",
            "My authenticator app shows codes but Acme Cloud says they are invalid.",
        ),
        (
            "Losing a phone is stressful, but your account is recoverable.",
            "Two-factor authentication is a great idea.",
            "Invalid codes are nearly always a clock problem.",
        ),
        (
            "On the sign-in screen, choose **Use a recovery code** and enter one of the codes "
            "you saved when you set up 2FA.",
            "Once you're in, go to **Profile → Security** and remove the old device.",
            "Scan the new QR code with your authenticator app on the new phone.",
            "Generate a fresh set of recovery codes and store them somewhere safe.",
            "Admins can require 2FA for everyone under **Settings → Security → Require "
            "two-factor**.",
        ),
        (
            "If you have no recovery codes, a workspace Admin can reset 2FA for you from the "
            "Members page.",
            "Authenticator codes depend on your phone's clock: turn on automatic time and try "
            "again.",
            "Members who haven't set up 2FA are asked to do so the next time they sign in.",
        ),
        "",
        (
            "The customer is the only admin, so the admin reset advice is useless.",
            "Recovery codes are under Account, not Profile.",
        ),
        (
            "I've verified your identity through your billing details and reset 2FA on your "
            "account. Sign in with your password and you'll be asked to set it up again.",
            "Because you're the only Owner, we need a short identity check before resetting "
            "2FA. I've sent you a form to fill in.",
        ),
    ),
    SupportTopic(
        "cancel",
        (
            "How do I cancel my subscription?",
            "We're moving to {{competitor}}. How do we cancel and what happens to our data?",
            "Can I pause the subscription for two months instead of cancelling?",
        ),
        (
            "Sorry to see you go.",
            "You can cancel at any time from the billing settings.",
            "Before you cancel, it's worth exporting your data.",
        ),
        (
            "Go to **Settings → Billing** and click **Cancel subscription**.",
            "Tell us briefly why you're leaving (optional, but it helps us).",
            "Confirm; the workspace stays fully usable until the end of the billing period.",
            "Export anything you want to keep under **Settings → Data → Export**.",
        ),
        (
            "After the period ends, the workspace is read-only for 30 days and then deleted.",
            "Annual plans can be paused for up to three months instead of cancelled.",
            "You can reactivate within 30 days and everything will be exactly as you left it.",
        ),
        "Cancel subscription",
        (
            "Pausing is not possible on monthly plans, this answer suggests it is.",
            "Data is kept for 90 days, not 30.",
        ),
        (
            "I've cancelled the subscription for {{workspace}} effective at the end of this "
            "period and sent you a confirmation. Your data stays available for 30 days.",
            "Before you cancel: we can move you to {{plan_a}} at half the price, which may cover "
            "what you still use. Just reply and I'll set it up.",
        ),
    ),
    SupportTopic(
        "invoice_vat",
        (
            "Invoice {{invoice}} is missing our VAT number. Can you reissue it?",
            "How do I change the company address on our invoices?",
            "Our finance team needs invoices addressed to {{company}}, not to me personally.",
        ),
        (
            "Invoices use the billing details stored on the workspace.",
            "We can fix that for past and future invoices.",
            "Happy to help get your invoices right.",
        ),
        (
            "Open **Settings → Billing → Billing details**.",
            "Enter the company name, address and VAT number exactly as registered.",
            "Save; every new invoice uses these details.",
            "For invoice {{invoice}} and older ones, click **Regenerate** next to the invoice.",
        ),
        (
            "With a valid EU VAT number, reverse charge applies and the invoice shows 0% VAT.",
            "Regenerated invoices keep their number, so your accounting stays consistent.",
            "Only Owners and Billing admins can change billing details.",
        ),
        "Regenerate",
        (
            "Regenerate only works for invoices from the last 90 days.",
            "VAT numbers are validated against VIES; ours failed and the answer ignores that.",
        ),
        (
            "I've added your VAT number and regenerated {{invoice}}; the corrected PDF is "
            "attached to this conversation.",
            "Your VAT number didn't validate in VIES this morning, which is why it was dropped. "
            "Please double-check it and I'll reissue the invoice.",
        ),
    ),
    SupportTopic(
        "webhooks",
        (
            "Our webhooks stopped arriving since {{day}}. Nothing changed on our side.",
            "How do I verify that a webhook really comes from Acme Cloud?",
            "Webhook deliveries to our endpoint show 'timeout' in the logs. What's the limit?",
        ),
        (
            "Let's find out why the deliveries are failing.",
            "Webhook problems are usually visible in the delivery log.",
            "Good question, you should always verify webhooks.",
        ),
        (
            "Open **Settings → Integrations → Webhooks** and select the endpoint.",
            "Check the **Deliveries** tab for the status code and response time of each attempt.",
            "Make sure your endpoint answers with a 2xx within 10 seconds; do slow work in a "
            "background job.",
            "Verify the `X-Acme-Signature` header: an HMAC-SHA256 of the raw body with your "
            "signing secret.",
            "Click **Redeliver** on failed events once the endpoint is healthy again.",
        ),
        (
            "After 20 consecutive failures we pause the endpoint and email the workspace Owners.",
            "Failed deliveries are retried with backoff for up to 24 hours.",
            "Compare signatures with a constant-time function to avoid timing attacks.",
        ),
        "Redeliver",
        (
            "The endpoint was paused, the answer should have said to re-enable it first.",
            "Signature header is X-Acme-Signature-256 now.",
        ),
        (
            "Your endpoint was paused on {{day}} after repeated timeouts. I've re-enabled it "
            "and redelivered the backlog; let me know if anything is missing.",
            "Your endpoint's TLS certificate expired on {{day}}, so our deliveries failed the "
            "handshake. Renew it and press Redeliver.",
        ),
    ),
    SupportTopic(
        "delete_account",
        (
            "Please delete my account and all my data.",
            "How do I remove a former employee's account from {{workspace}}?",
            "What data do you keep after I delete my account?",
        ),
        (
            "We can delete your account and its data.",
            "Removing someone from the workspace is done from the Members page.",
            "Here's what happens to your data.",
        ),
        (
            "Go to **Profile → Account** and click **Delete account**.",
            "Type your email address to confirm.",
            "For a former employee, an Admin opens **Settings → Members**, clicks the person and "
            "chooses **Remove from workspace**.",
            "Reassign their projects when prompted, so nothing is orphaned.",
        ),
        (
            "Deletion is permanent after 14 days; until then you can ask us to restore it.",
            "Invoices are kept for seven years because tax law requires it; everything else is "
            "erased.",
            "If you own a workspace, transfer ownership first or delete the workspace too.",
        ),
        "Delete account",
        (
            "The customer is the workspace owner, this misses the ownership transfer.",
            "Deletion is immediate now, there is no 14-day window.",
        ),
        (
            "I've scheduled the deletion of your account; you'll get a confirmation email when "
            "it's done. Invoices are kept for tax purposes only.",
            "I've removed the former employee and moved their projects to you, so you don't need "
            "to do anything else.",
        ),
    ),
)

SUPPORT_OPENERS = (
    "Hi {{first}},",
    "Hi {{first}}, thanks for reaching out.",
    "Thanks for getting in touch!",
    "Hello {{first}},",
    "",
    "",
)
SUPPORT_CLOSERS = (
    "Let me know if anything is unclear.",
    "If that doesn't solve it, reply here and we'll take a closer look.",
    "Hope this helps!",
    "Anything else I can help with?",
    "",
)
SUPPORT_FOLLOWUPS = (
    "I tried that but the {{button}} button is greyed out.",
    "I don't see {{button}} anywhere on that page.",
)
SUPPORT_FOLLOWUP_ANSWERS = (
    "A greyed-out **{{button}}** usually means your role doesn't allow the change. Only "
    "workspace Owners and Admins can use it. You can see who they are under **Settings → "
    "Members**; ask one of them to do it for you or to give you the Admin role.",
    "If **{{button}}** is missing, you are probably looking at your personal settings rather "
    "than the workspace settings. Switch to {{workspace}} with the workspace menu in the top "
    "left corner and open the page again. If it's still not there, send me a screenshot and "
    "I'll check your permissions.",
)


# --- content: code help --------------------------------------------------------------


@dataclass(frozen=True)
class CodeTopic:
    key: str
    lang: str
    questions: tuple[str, ...]
    explanations: tuple[str, ...]
    code: str
    complaints: tuple[str, ...]
    own: tuple[str, ...]


CODE_SYSTEM = {
    OLD_MODEL: "You are a coding assistant. Answer with working code and a short explanation.",
    NEW_MODEL: "You are a senior engineer helping a colleague. Give a short explanation, then "
    "one idiomatic code example. Mention pitfalls only when they matter.",
}

CODE_TOPICS = (
    CodeTopic(
        "read_csv",
        "python",
        (
            "How do I read a CSV file in Python and skip the header row?",
            "What's the cleanest way to load {{csv}} into a list of dicts?",
            "Reading {{csv}} with the csv module gives me the header as the first row. How do "
            "I skip it?",
        ),
        (
            "`csv.DictReader` treats the first row as the header and yields every following "
            "row as a dict, so the header never shows up as data.",
            'Open the file with `newline=""`: the csv module handles line endings itself, and '
            "without it quoted fields that contain newlines can break.",
            "If you only need the values, call `next(reader)` once on a plain `csv.reader` to "
            "skip the header, then loop over the rest.",
            "For large files iterate over the reader instead of calling `list()`, so only one "
            "row is in memory at a time.",
            'Passing `encoding="utf-8"` explicitly avoids surprises on Windows, where the '
            "default encoding is different.",
        ),
        'import csv\n\nwith open("{{csv}}", newline="", encoding="utf-8") as f:\n'
        "    {{var}} = list(csv.DictReader(f))\n\n"
        'print(len({{var}}), {{var}}[0]["{{col}}"])',
        (
            "DictReader breaks on our file because the header has a BOM, use utf-8-sig.",
            "I asked about pandas, not the csv module.",
        ),
        (
            "Use pandas, it's one line and handles the BOM: "
            '`df = pd.read_csv("{{csv}}", encoding="utf-8-sig")`.',
            "Our files are semicolon-separated exports from Excel, so you need "
            '`csv.DictReader(f, delimiter=";")` or every row comes back as one column.',
        ),
    ),
    CodeTopic(
        "retry",
        "python",
        (
            "How do I retry an HTTP request with exponential backoff in Python?",
            "Our call to {{service}} fails randomly with connection errors. How do I add retries?",
            "What's a simple retry loop with backoff for requests.get?",
        ),
        (
            "Retry only on errors that can succeed on a second try: connection errors and 5xx "
            "responses, never 4xx.",
            "Exponential backoff doubles the wait after each failure, and a little random "
            "jitter keeps many clients from retrying in lockstep.",
            "Always pass a `timeout`; without it a hung connection blocks the loop forever.",
            "If you'd rather not write the loop yourself, `urllib3.Retry` mounted on a "
            "`requests.Session` does the same thing.",
            "Cap the delay so a long outage doesn't make a single call wait for minutes.",
        ),
        "import random\nimport time\n\nimport requests\n\n\n"
        "def {{verb}}_with_retry(url, attempts={{attempts}}):\n"
        "    for attempt in range(attempts):\n"
        "        try:\n"
        "            response = requests.get(url, timeout={{timeout}})\n"
        "            if response.status_code < 500:\n"
        "                return response\n"
        "        except requests.ConnectionError:\n"
        "            pass\n"
        "        time.sleep(min({{cap}}, 2 ** attempt) + random.random())\n"
        '    raise RuntimeError(f"{url} failed after {attempts} attempts")',
        (
            "This retries POST requests too, which is not safe for us.",
            "Should use tenacity, we already depend on it.",
        ),
        (
            "We already have tenacity: decorate the function with "
            "`@retry(wait=wait_exponential(max=30), stop=stop_after_attempt(5))` and delete "
            "the loop.",
            "Don't retry at all here: {{service}} is behind our own gateway, which already "
            "retries twice. Add a timeout and surface the error.",
        ),
    ),
    CodeTopic(
        "dedupe",
        "python",
        (
            "How do I remove duplicates from a list but keep the original order?",
            "set() loses the order of my {{var}} list. What should I use instead?",
            "Fastest way to deduplicate a list of strings in Python while preserving order?",
        ),
        (
            "Dictionaries keep insertion order since Python 3.7, so `dict.fromkeys` drops "
            "duplicates and keeps the first occurrence of each item.",
            "A `set` has no order at all, which is why the result looked shuffled.",
            "This runs in linear time, unlike checking `if x not in result` in a loop, which is "
            "quadratic.",
            "The items must be hashable; for lists of dicts, deduplicate on a key instead.",
        ),
        '{{var}} = ["b", "a", "b", "c", "a"]\nunique = list(dict.fromkeys({{var}}))\n'
        "print(unique)  # ['b', 'a', 'c']",
        (
            "My items are dicts, so this raises TypeError: unhashable type.",
            "Needs to be case-insensitive, this isn't.",
        ),
        (
            "For dicts, keep a set of seen keys: "
            '`seen = set(); unique = [r for r in {{var}} if r["id"] not in seen and not '
            'seen.add(r["id"])]`.',
            "Simplest for us is `sorted(set({{var}}))`: we actually want them sorted anyway.",
        ),
    ),
    CodeTopic(
        "env",
        "python",
        (
            "How do I read an environment variable with a default value in Python?",
            "os.environ['{{env}}'] raises KeyError when it's not set. What's the right way?",
            "Best way to read {{env}} as an integer from the environment?",
        ),
        (
            "`os.environ.get` returns the default instead of raising `KeyError` when the "
            "variable is missing.",
            "Environment variables are always strings, so convert them yourself and fail "
            "early with a clear message if the value is invalid.",
            "Read configuration once at startup rather than scattered through the code; it "
            "makes missing values obvious.",
            'For booleans, compare against an explicit set of values: `bool("false")` is True.',
        ),
        "import os\n\n"
        'raw = os.environ.get("{{env}}", "{{default}}")\ntry:\n    {{env_lower}} = int(raw)\n'
        "except ValueError:\n"
        '    raise SystemExit(f"{{env}} must be an integer, got {raw!r}")',
        (
            "SystemExit inside a library is a bad idea.",
            "We use pydantic-settings for this.",
        ),
        (
            "We use pydantic-settings: add `{{env_lower}}: int = 30` to the Settings class and "
            "it is read, converted and validated for you.",
            "Don't read it in this module at all; it's passed in from the config loader in "
            "`app/settings.py`.",
        ),
    ),
    CodeTopic(
        "dict_iter",
        "python",
        (
            "Why do I get 'RuntimeError: dictionary changed size during iteration'?",
            "I'm deleting keys from a dict inside a for loop and Python crashes. Why?",
        ),
        (
            "Python doesn't allow adding or removing keys while you iterate over the same "
            "dict, because the iterator would lose its place.",
            "Iterate over a snapshot of the keys with `list(d)` and you can delete safely.",
            "Often clearer: build a new dict with a comprehension that keeps only what you want.",
            "Changing the values of existing keys is fine; only adding or removing keys is a "
            "problem.",
        ),
        "{{dict}} = {'{{key1}}': 1, '{{key2}}': None, '{{key3}}': 3}\n\n"
        "for key in list({{dict}}):\n    if {{dict}}[key] is None:\n        del {{dict}}[key]\n\n"
        "# or, without mutating:\n"
        "{{dict}} = {k: v for k, v in {{dict}}.items() if v is not None}",
        (
            "The comprehension creates a new dict, other references still see the old one.",
            "Doesn't explain why it only fails sometimes.",
        ),
        (
            "The real problem was a second thread writing to the cache while we iterate. Wrap "
            "both sides in the same `threading.Lock`; copying the keys only hides it.",
        ),
    ),
    CodeTopic(
        "none_subscript",
        "python",
        (
            "TypeError: 'NoneType' object is not subscriptable. What does it mean?",
            "My function returns data but I get 'NoneType' object is not subscriptable on "
            "{{var}}[0]. Why?",
        ),
        (
            "The variable you index is `None`, usually because a function has a code path "
            "that ends without `return`.",
            "Methods that change a list in place, such as `sort()` or `append()`, return "
            "`None`; assigning their result is a common cause.",
            "Add an explicit `return` on every path, or check for `None` before indexing.",
            "A type checker like mypy catches this class of bug before you run the code.",
        ),
        "def load_{{var}}(path):\n    if not path.exists():\n        return []  # was missing\n"
        "    return path.read_text().splitlines()\n\n"
        "{{var}} = load_{{var}}(source)\nfirst = {{var}}[0] if {{var}} else None",
        (
            "It was .sort() assigned back, the answer focuses on the wrong thing.",
            "Returning [] hides the error, I'd rather raise.",
        ),
        (
            "It's `{{var}} = {{var}}.sort()` on line 12: sort() returns None. Use "
            "`{{var}}.sort()` on its own line or `{{var}} = sorted({{var}})`.",
        ),
    ),
    CodeTopic(
        "undefined_map",
        "javascript",
        (
            "TypeError: Cannot read properties of undefined (reading 'map') in my React "
            "component. How do I fix it?",
            "My component crashes on first render because {{var}} is undefined. What's the "
            "pattern here?",
        ),
        (
            "On the first render the data hasn't arrived yet, so the state is `undefined` "
            "and `.map` fails.",
            "Initialise the state with an empty array so the first render has something to "
            "map over.",
            "Render a loading state while the request is in flight instead of an empty list, "
            "so users can tell the difference.",
            "Optional chaining (`{{var}}?.map`) avoids the crash but renders nothing, which can "
            "hide real errors.",
        ),
        "function {{Var}}List() {\n  const [{{var}}, set{{Var}}] = useState([]);\n"
        "  const [loading, setLoading] = useState(true);\n\n"
        "  useEffect(() => {\n    fetch('/api/{{var}}')\n      .then((r) => r.json())\n"
        "      .then(set{{Var}})\n      .finally(() => setLoading(false));\n  }, []);\n\n"
        "  if (loading) return <Spinner />;\n"
        "  return <ul>{{jsx_list}}</ul>;\n}",
        (
            "We use React Query, this manual fetch is not how we do it.",
            "The API returns {data: [...]}, so set{{Var}} gets an object.",
        ),
        (
            "We use React Query everywhere: `const { data = [], isLoading } = "
            "useQuery({ queryKey: ['{{var}}'], queryFn: fetch{{Var}} })` and drop the effect.",
        ),
    ),
    CodeTopic(
        "fetch_timeout",
        "javascript",
        (
            "How do I add a timeout to fetch() in JavaScript?",
            "fetch to {{service}} hangs forever sometimes. Can I abort it after a few seconds?",
        ),
        (
            "`fetch` has no timeout option, but `AbortSignal.timeout(ms)` gives you a signal "
            "that aborts the request after that many milliseconds.",
            "When the signal fires, the promise rejects with a `TimeoutError`, which you can "
            "catch separately from network errors.",
            "`AbortSignal.timeout` works in all current browsers and in Node 18 and later.",
            "To combine a timeout with a user-initiated cancel, use `AbortSignal.any`.",
        ),
        "async function getJson(url, ms = {{ms}}) {\n"
        "  try {\n    const res = await fetch(url, { signal: AbortSignal.timeout(ms) });\n"
        "    if (!res.ok) throw new Error(`HTTP ${res.status}`);\n    return await res.json();\n"
        "  } catch (err) {\n    if (err.name === 'TimeoutError') {\n"
        "      throw new Error(`${url} took longer than ${ms} ms`);\n    }\n    throw err;\n"
        "  }\n}",
        (
            "We still support Safari 15, where AbortSignal.timeout doesn't exist.",
            "This swallows the original error stack.",
        ),
        (
            "For Safari 15 you need the manual version: create an AbortController, call "
            "`setTimeout(() => controller.abort(), {{ms}})` and clear the timer when fetch "
            "settles.",
        ),
    ),
    CodeTopic(
        "debounce",
        "typescript",
        (
            "How do I debounce a search input in TypeScript?",
            "Write a typed debounce function for me, my search box fires a request on every "
            "keystroke.",
        ),
        (
            "A debounce waits until calls stop for a given delay and then runs the function "
            "once with the latest arguments.",
            "Typing it with `Parameters<F>` keeps the arguments of the wrapped function checked.",
            "Around 250 to 300 ms feels responsive for search boxes without flooding the server.",
            "In React, create the debounced function once with `useMemo`, otherwise each render "
            "gets a new timer.",
        ),
        "export function debounce<F extends (...args: any[]) => void>(fn: F, ms = {{ms}}) {\n"
        "  let timer: ReturnType<typeof setTimeout> | undefined;\n"
        "  return (...args: Parameters<F>) => {\n    clearTimeout(timer);\n"
        "    timer = setTimeout(() => fn(...args), ms);\n  };\n}\n\n"
        "const onSearch = debounce((q: string) => search{{Var}}(q), 300);",
        (
            "Needs a cancel() method for unmount.",
            "lodash is already in our bundle, no need to write this.",
        ),
        (
            "lodash is already in the bundle: `import debounce from 'lodash/debounce'` and "
            "call `onSearch.cancel()` in the effect cleanup.",
        ),
    ),
    CodeTopic(
        "group_by",
        "javascript",
        (
            "How do I group an array of objects by a property in JavaScript?",
            "I have {{var}} with a {{col}} field. How do I group them by {{col}}?",
        ),
        (
            "`Object.groupBy` does exactly this and is available in current browsers and Node 21+.",
            "For older runtimes, `reduce` into an object does the same in a few lines.",
            "Use a `Map` instead of a plain object if the keys aren't strings.",
            "Grouping doesn't copy the objects; the groups hold references to the originals.",
        ),
        "const byKey = Object.groupBy({{var}}, (item) => item.{{col}});\n\n"
        "// older runtimes\nconst grouped = {{var}}.reduce((acc, item) => {\n"
        "  (acc[item.{{col}}] ??= []).push(item);\n  return acc;\n}, {});",
        (
            "Object.groupBy isn't in our Node 18 runtime.",
            "TypeScript complains about the reduce accumulator type.",
        ),
        (
            "We're on Node 18, so use lodash's `groupBy({{var}}, '{{col}}')`; it's already a "
            "dependency.",
        ),
    ),
    CodeTopic(
        "nil_map",
        "go",
        (
            "Go panics with 'assignment to entry in nil map'. What's wrong?",
            "Why does my Go struct's map field panic when I add a key?",
        ),
        (
            "A map declared with `var m map[string]int` or left as a zero-value struct field "
            "is nil: you can read from it, but writing panics.",
            "Create it with `make` before the first write, ideally in a constructor.",
            "Reading from a nil map is fine and returns the zero value, which is why the bug "
            "shows up only on the first write.",
            "A constructor function keeps callers from forgetting the initialisation.",
        ),
        "type {{Go}} struct {\n\t{{field}} map[string]int\n}\n\n"
        "func New{{Go}}() *{{Go}} {\n\treturn &{{go_literal}}\n}\n\n"
        "func (c *{{Go}}) Add(key string) {\n\tc.{{field}}[key]++\n}",
        (
            "We can't add a constructor, the struct is decoded from JSON.",
            "Doesn't mention concurrency, this map is used from goroutines.",
        ),
        (
            "The struct comes from JSON, so initialise lazily in Add: "
            "`if c.counts == nil { c.counts = map[string]int{} }`. And it's shared between "
            "goroutines, so use a mutex or sync.Map.",
        ),
    ),
    CodeTopic(
        "errgroup",
        "go",
        (
            "How do I run several HTTP calls concurrently in Go and wait for all of them?",
            "What's the idiomatic way to fan out requests to {{service}} and collect errors in Go?",
        ),
        (
            "`errgroup.Group` runs functions in goroutines, waits for all of them and returns "
            "the first error.",
            "With `errgroup.WithContext`, the context is cancelled as soon as one call fails, "
            "so the others can stop early.",
            "`SetLimit` caps how many run at once, which keeps you under rate limits.",
            "Write results into a pre-sized slice by index so no mutex is needed.",
        ),
        "g, ctx := errgroup.WithContext(ctx)\ng.SetLimit({{limit}})\n"
        "results := make([]{{Go}}, len(ids))\n\nfor i, id := range ids {\n"
        "\tg.Go(func() error {\n\t\tr, err := client.{{Fetch}}(ctx, id)\n"
        '\t\tif err != nil {\n\t\t\treturn fmt.Errorf("fetch %s: %w", id, err)\n\t\t}\n'
        "\t\tresults[i] = r\n\t\treturn nil\n\t})\n}\nif err := g.Wait(); err != nil {\n"
        "\treturn nil, err\n}",
        (
            "We need all errors, not just the first one.",
            "Loop variable capture is only fixed from Go 1.22, we are on 1.21.",
        ),
        (
            "We're on Go 1.21, so copy the loop variables (`i, id := i, id`) inside the loop, "
            "and we want every error: collect them with `errors.Join` instead of errgroup.",
        ),
    ),
    CodeTopic(
        "sed_replace",
        "bash",
        (
            "How do I replace a string in all .{{ext}} files in a directory with sed?",
            "Rename {{old}} to {{new}} across the whole repo from the command line?",
        ),
        (
            "`find` selects the files and `sed -i` edits each one in place.",
            "Ending `-exec` with `+` passes many files to one sed call, which is much faster "
            "than one call per file.",
            "On macOS, BSD sed needs an explicit backup suffix: `sed -i ''`.",
            "Run it on a clean git tree so `git diff` shows exactly what changed and "
            "`git checkout .` undoes it.",
        ),
        "find . -name '*.{{ext}}' -not -path './node_modules/*' \\\n"
        "  -exec sed -i 's/{{old}}/{{new}}/g' {} +\n\ngit diff --stat",
        (
            "This also rewrites files in .git, careful.",
            "sed doesn't handle the slash in the pattern.",
        ),
        (
            "Use `git grep -l '{{old}}' | xargs sed -i 's|{{old}}|{{new}}|g'`: it only touches "
            "tracked files and the | delimiter avoids escaping slashes.",
        ),
    ),
    CodeTopic(
        "files_with_spaces",
        "bash",
        (
            "My bash loop over files breaks when file names contain spaces. How do I fix it?",
            "for f in $(ls *.{{ext}}) splits names with spaces. What's the right way?",
        ),
        (
            "`$(ls ...)` splits on whitespace, so a name with spaces becomes several words.",
            'A glob (`for f in *.{{ext}}`) keeps each file name intact; just quote `"$f"` '
            "wherever you use it.",
            "For recursive searches, `find -print0` with `read -d ''` handles any character, "
            "even newlines in names.",
            "`shopt -s nullglob` makes the loop run zero times when nothing matches, instead "
            "of once with the literal pattern.",
        ),
        'shopt -s nullglob\nfor f in *.{{ext}}; do\n  echo "processing $f"\n'
        '  wc -l "$f"\ndone\n\n# recursive\n'
        "find . -name '*.{{ext}}' -print0 | while IFS= read -r -d '' f; do\n"
        '  wc -l "$f"\ndone',
        (
            "The while loop runs in a subshell, so my counter is lost.",
            "We're on zsh, not bash.",
        ),
        (
            "In zsh none of this is needed: `for f in **/*.{{ext}}(.N); do wc -l $f; done` "
            "handles spaces and recursion by itself.",
        ),
    ),
)

CODE_INTROS = (
    "Here's a small example.",
    "This is a common one.",
    "Good question, this trips up a lot of people.",
    "",
    "",
)
CODE_OUTROS = (
    "Let me know if you want a version with tests.",
    "Adjust the names to match your code.",
    "Happy to explain any line in more detail.",
    "",
    "",
)


# --- content: sql --------------------------------------------------------------------


@dataclass(frozen=True)
class SqlTopic:
    key: str
    questions: tuple[str, ...]
    explanations: tuple[str, ...]
    code: str
    complaints: tuple[str, ...]
    own: tuple[str, ...]


SQL_SYSTEM = (
    "You write PostgreSQL for analysts. Tables: orders(id, customer_id, total_cents, status, "
    "created_at), customers(id, country, plan, signed_up_at), events(user_id, name, "
    "occurred_at)."
)

SQL_INTROS = ("Here's a query that does it.", "This works on PostgreSQL 13 and later.", "", "")

SQL_TOPICS = (
    SqlTopic(
        "monthly_revenue",
        (
            "Monthly revenue by country for the last {{nmonths}} months?",
            "Can you write a query for revenue per month and country, paid orders only?",
        ),
        (
            "`date_trunc('month', ...)` buckets orders by calendar month.",
            "Only orders with status 'paid' count as revenue, so refunds and drafts are left out.",
            "Amounts are stored in cents; divide by 100.0 at the end to keep full precision.",
        ),
        "SELECT date_trunc('month', o.created_at) AS month,\n       c.country,\n"
        "       sum(o.total_cents) / 100.0 AS revenue\nFROM orders o\n"
        "JOIN customers c ON c.id = o.customer_id\nWHERE o.status = 'paid'\n"
        "  AND o.created_at >= date_trunc('month', now()) - interval '{{nmonths}} months'\n"
        "GROUP BY 1, 2\nORDER BY 1, 3 DESC;",
        ("Revenue should exclude tax, the column total_cents includes it.",),
        (
            "Use the finance view instead: `SELECT * FROM finance.monthly_revenue WHERE month "
            ">= '2025-01-01'`; it already excludes tax and refunds.",
        ),
    ),
    SqlTopic(
        "no_orders",
        (
            "Find customers who signed up in the last {{ndays}} days but never placed an order.",
            "Which new customers haven't bought anything yet?",
        ),
        (
            "`NOT EXISTS` is the clearest way to express 'has no matching order' and the "
            "planner handles it well.",
            "A `LEFT JOIN ... WHERE o.id IS NULL` gives the same result if you prefer joins.",
            "An index on `orders(customer_id)` keeps this fast on big tables.",
        ),
        "SELECT c.id, c.country, c.plan, c.signed_up_at\nFROM customers c\n"
        "WHERE c.signed_up_at >= now() - interval '{{ndays}} days'\n"
        "  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)\n"
        "ORDER BY c.signed_up_at DESC;",
        ("Should ignore cancelled orders too.",),
        (
            "Cancelled orders shouldn't count, so the subquery needs "
            "`AND o.status <> 'cancelled'`. Also we only care about the Business plan.",
        ),
    ),
    SqlTopic(
        "dau",
        (
            "Daily active users over the past {{ndays}} days from the events table?",
            "How do I count distinct users per day?",
        ),
        (
            "`count(DISTINCT user_id)` per day gives daily active users.",
            "`generate_series` fills in days with no events, so the chart has no gaps.",
            "Cast to `date` in the time zone your team reports in, or days split at midnight UTC.",
        ),
        "SELECT d::date AS day, count(DISTINCT e.user_id) AS dau\n"
        "FROM generate_series(now() - interval '{{ndays}} days', now(), interval '1 day') d\n"
        "LEFT JOIN events e ON e.occurred_at::date = d::date\nGROUP BY 1\nORDER BY 1;",
        ("The join on ::date can't use the index, this is very slow.",),
        (
            "Much faster: aggregate events first and join the series afterwards, and use the "
            "`analytics.daily_users` rollup for anything older than a week.",
        ),
    ),
    SqlTopic(
        "top_customers",
        (
            "Top {{top}} customers by revenue last quarter?",
            "Who are our biggest customers this quarter?",
        ),
        (
            "Filtering on the previous quarter with `date_trunc('quarter', ...)` avoids "
            "hard-coding dates.",
            "`LIMIT` after `ORDER BY ... DESC` keeps the biggest spenders.",
            "Ties at the cut-off are dropped arbitrarily; use `FETCH FIRST ... WITH TIES` to "
            "keep them.",
        ),
        "SELECT o.customer_id, sum(o.total_cents) / 100.0 AS revenue\nFROM orders o\n"
        "WHERE o.status = 'paid'\n"
        "  AND o.created_at >= date_trunc('quarter', now()) - interval '3 months'\n"
        "  AND o.created_at < date_trunc('quarter', now())\nGROUP BY 1\n"
        "ORDER BY revenue DESC\nLIMIT {{top}};",
        ("I meant this quarter, not last quarter.",),
        (
            "For this quarter it's simply `o.created_at >= date_trunc('quarter', now())`; and "
            "join customers so finance sees names, not ids.",
        ),
    ),
)


# --- content: summarisation ----------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    full: str
    short: str
    action: str = ""


@dataclass(frozen=True)
class DocKind:
    key: str
    name: str
    title: str
    facts: tuple[Fact, ...]
    filler: tuple[str, ...]
    lead: str


DOC_KINDS = (
    DocKind(
        "meeting",
        "meeting notes",
        "Weekly sync, {{team}} team",
        (
            Fact(
                "{{p1}} said the {{project}} migration is about {{pct}}% done and should be "
                "finished by {{day}}.",
                "{{project}} migration is ~{{pct}}% done, due {{day}} ({{p1}})",
            ),
            Fact(
                "We agreed to move the {{team}} on-call rotation from weekly to fortnightly "
                "starting next month.",
                "On-call rotation becomes fortnightly from next month",
            ),
            Fact(
                "{{p2}} raised that staging has been flaky since the database upgrade; {{p3}} "
                "will look into it this week.",
                "Staging has been flaky since the DB upgrade; {{p3}} is investigating",
                "{{p3}}: investigate the flaky staging environment",
            ),
            Fact(
                "The budget for the {{quarter}} offsite was approved at ${{budget}}.",
                "{{quarter}} offsite budget approved (${{budget}})",
            ),
            Fact(
                "Hiring: two {{role}} candidates are in final rounds and decisions are expected "
                "by {{day2}}.",
                "Two {{role}} candidates in final rounds, decision by {{day2}}",
            ),
            Fact(
                "The {{feature}} launch slips by one week because the legal review is not "
                "finished.",
                "{{feature}} launch delayed one week (legal review)",
            ),
            Fact(
                "{{p1}} will write the RFC for {{feature2}} and share it before the next sync.",
                "{{p1}} is writing the RFC for {{feature2}}, due before the next sync",
                "{{p1}}: write and share the {{feature2}} RFC",
            ),
            Fact(
                "{{company}} reported slow exports; {{p2}} is pairing with support on it.",
                "{{company}} sees slow exports, {{p2}} on it with support",
                "{{p2}}: follow up on the slow exports at {{company}}",
            ),
        ),
        (
            "The meeting started ten minutes late because of the all-hands.",
            "{{p3}} showed a short demo of the new dashboard, which got a lot of positive "
            "comments.",
            "No updates from design this week.",
            "Next sync is on {{day2}} at the usual time.",
        ),
        "The {{team}} team's weekly sync covered {{count}} topics:",
    ),
    DocKind(
        "incident",
        "incident report",
        "{{inc}}: {{service}} degraded",
        (
            Fact(
                "On {{day}}, {{service}} returned errors for {{minutes}} minutes; about "
                "{{err_pct}}% of requests failed at the peak.",
                "{{service}} errors for {{minutes}} min on {{day}}, peak {{err_pct}}% of requests",
            ),
            Fact(
                "The cause was a configuration change that lowered the connection pool size "
                "from 50 to 5 during a routine deploy.",
                "Root cause: a deploy shrank the connection pool from 50 to 5",
            ),
            Fact(
                "The on-call engineer, {{p1}}, was paged {{detect}} minutes after the error "
                "rate rose.",
                "Paged after {{detect}} minutes ({{p1}} on call)",
            ),
            Fact(
                "Rolling back the deploy restored normal service; no data was lost.",
                "Rolling back the deploy restored service; no data was lost",
            ),
            Fact(
                "Customers on the {{plan_b}} plan saw failed checkouts and {{n_users}} support "
                "tickets were opened.",
                "{{plan_b}} customers hit failed checkouts; {{n_users}} tickets",
            ),
            Fact(
                "Follow-up: add a config check to CI so pool sizes below 20 fail the build.",
                "Follow-up: a CI check that fails builds with pool sizes below 20",
                "{{p2}}: add a CI check for the connection pool size",
            ),
            Fact(
                "Follow-up: alert on error rate after two minutes instead of five.",
                "Follow-up: alert on error rate after two minutes instead of five",
                "{{p3}}: tighten the error-rate alert to two minutes",
            ),
        ),
        (
            "This report is blameless; its purpose is to improve our systems.",
            "A timeline with all log excerpts is attached in the appendix.",
            "Thanks to everyone who joined the incident channel.",
        ),
        "{{inc}} was a degradation of {{service}}. In brief:",
    ),
    DocKind(
        "call",
        "customer call notes",
        "Call with {{company}} ({{contact}}, {{title}})",
        (
            Fact(
                "{{contact}} said their team of {{n_users}} people mainly uses us for "
                "reporting and wants {{feature}} before renewal.",
                "{{company}} ({{n_users}} users) wants {{feature}} before renewal",
            ),
            Fact(
                "Their contract renews on {{renewal}}; they are also evaluating {{competitor}}.",
                "Renewal {{renewal}}; also evaluating {{competitor}}",
            ),
            Fact(
                "The main complaint is that exports time out for large projects.",
                "Main pain point: exports time out on large projects",
            ),
            Fact(
                "They asked for a 15% discount if they move to an annual plan.",
                "Asked for 15% off to go annual",
                "{{p1}}: get approval for the annual discount",
            ),
            Fact(
                "{{p2}} promised a roadmap walkthrough with product next week.",
                "{{p2}} promised a roadmap session with product next week",
                "{{p2}}: schedule the roadmap walkthrough",
            ),
            Fact(
                "Their security team needs SOC 2 documents before signing.",
                "Their security team needs SOC 2 documents before signing",
                "{{p1}}: send the SOC 2 report",
            ),
        ),
        (
            "The call lasted about 40 minutes.",
            "{{contact}} joined late from another meeting.",
            "Overall the tone was friendly.",
        ),
        "Notes from the call with {{contact}} ({{title}}) at {{company}}:",
    ),
    DocKind(
        "release",
        "release notes",
        "Acme Cloud {{version}} release notes",
        (
            Fact(
                "New: {{feature}} is now available on all paid plans.",
                "{{feature}} available on all paid plans",
            ),
            Fact(
                "New: {{feature2}} can be switched on per workspace in Settings.",
                "{{feature2}} can be enabled per workspace",
            ),
            Fact(
                "Improved: search results load about twice as fast for large workspaces.",
                "Search about 2x faster on large workspaces",
            ),
            Fact(
                "Fixed: exported CSV files no longer drop rows that contain line breaks.",
                "CSV export no longer drops rows with line breaks",
            ),
            Fact(
                "Fixed: invitation emails were sometimes sent twice.",
                "Fixed invitation emails that were sometimes sent twice",
            ),
            Fact(
                "Breaking: API version 1 is removed; integrations must use version 2.",
                "Breaking: API v1 removed, use v2",
                "Integration owners: migrate to API v2",
            ),
            Fact(
                "Deprecated: the legacy dashboard will be removed in {{month}}.",
                "Legacy dashboard removed in {{month}}",
            ),
        ),
        (
            "As always, thank you for the feedback that shaped this release.",
            "The full changelog is available in the help centre.",
        ),
        "What changes in Acme Cloud {{version}}:",
    ),
    DocKind(
        "survey",
        "survey results",
        "Customer survey, {{quarter}} results",
        (
            Fact(
                "{{n_users}} customers answered the survey, twice as many as last quarter.",
                "{{n_users}} responses, 2x last quarter",
            ),
            Fact(
                "Overall satisfaction is {{sat}}%, up four points.",
                "Satisfaction {{sat}}%, up 4 points",
            ),
            Fact(
                "The most requested feature is {{feature}}, mentioned by a third of respondents.",
                "Top request: {{feature}} (a third of respondents)",
            ),
            Fact(
                "Enterprise customers rate support highest; {{plan_a}} customers rate it lowest, "
                "mostly because of response times.",
                "{{plan_a}} customers least happy with support response times",
            ),
            Fact(
                "Many comments mention that the mobile app is slow to load.",
                "Mobile app slowness is a recurring complaint",
            ),
            Fact(
                "{{p1}} proposes a follow-up interview with ten detractors.",
                "Follow-up interviews with detractors proposed",
                "{{p1}}: set up interviews with ten detractors",
            ),
        ),
        (
            "The survey ran for two weeks.",
            "Free-text answers were tagged by two people independently.",
        ),
        "The {{quarter}} customer survey in brief:",
    ),
)

SUMMARY_SYSTEM = {
    OLD_MODEL: "You summarise documents. Be faithful to the text.",
    NEW_MODEL: "You summarise documents for busy colleagues. Be faithful to the text, never "
    "add facts, and keep names, numbers and dates exactly as written.",
}
SUMMARY_REQUESTS = (
    "Summarise these {{kind}} in {{k}} bullet points:",
    "Can you give me a TL;DR of the following {{kind}}?",
    "Summarise this for my manager, keep it short:",
    "What are the key points and action items here?",
    "Please summarise:",
)
SUMMARY_INTROS = (
    "Here's a summary of the {{kind}}:",
    "Key points:",
    "TL;DR:",
    "Summary ({{doc_title}}):",
)
SUMMARY_FOLLOWUPS = (
    "Shorter please, two sentences max.",
    "Can you make that shorter? It's for a chat message.",
)
SUMMARY_COMPLAINTS = (
    "You left out: {{missing}}.",
    "Too long, I asked for {{k}} bullets.",
    "This misses the action items.",
    "The summary adds a deadline that isn't in the notes.",
)


# --- feedback content ------------------------------------------------------------------

POSITIVE_COMMENTS = (
    "Perfect, exactly what I needed.",
    "Clear and short, thanks!",
    "Worked first time.",
    "Great, sending this to the customer as is.",
    "Nice, much better than the old answers.",
    "Good summary, saved me ten minutes.",
)
NEGATIVE_COMMENTS = (
    "Too long.",
    "Not what I asked.",
    "Wrong, see my edit.",
    "Outdated, the UI changed.",
    "Please stop starting every answer with a greeting.",
)
PII_COMMENTS = (
    "Please call me back on {{phone}}, this is urgent.",
    "Send the corrected version to {{email}} please.",
    "The customer's card {{card}} was charged twice, see ticket {{ticket}}.",
)
PII_LINES = (
    "My account email is {{email}}.",
    "You can reach me on {{phone}} if that's easier.",
    "The charge was on my card {{card}}.",
    "Please reply to {{email}}, I don't check this inbox.",
)
PII_EDIT_LINES = (
    "Questions? Email me at {{email}}.",
    "Call {{phone}} if this doesn't work.",
)
PII_CODE_LINES = (
    "The log line is: login failed for user {{email}} (attempt 3)",
    "Test data row: {{first}} {{last}}, {{email}}, {{phone}}",
)
GENERIC_OWN = (
    "Ignore the draft above. This is handled by a different team now; I've forwarded your "
    "message and they'll reply directly.",
    "Closing this one: we fixed the underlying bug in today's release, no action needed on "
    "your side.",
    "Not relevant for us. We solved it by pinning the older version until next sprint.",
)

# Misspellings a language model or a hurried writer makes; the fix is the left side.
TYPOS = (
    ("receive", "recieve"),
    ("separate", "seperate"),
    ("until", "untill"),
    ("definitely", "definately"),
    ("occurred", "occured"),
    ("address", "adress"),
    ("necessary", "neccessary"),
    ("immediately", "immediatly"),
    ("whether", "wether"),
    ("available", "availible"),
    ("because", "becuase"),
    ("the", "teh"),
    ("with", "wiht"),
    ("your", "you"),
    ("there", "their"),
)


# --- time and users ------------------------------------------------------------------

# Traffic by UTC hour: European mornings and American afternoons overlap mid-day.
HOURLY = (
    0.22, 0.18, 0.14, 0.12, 0.12, 0.16, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0,
    0.95, 1.0, 1.0, 1.0, 0.95, 0.9, 0.8, 0.7, 0.58, 0.46, 0.36, 0.28,
)  # fmt: skip
WEEKDAY = (1.0, 1.0, 1.0, 0.97, 0.85, 0.38, 0.32)
LOCALES = ("en-US", "en-US", "en-GB", "en-US", "de-DE", "en-IN", "fr-FR", "en-CA")
SEGMENTS = (("free", 0.5), ("pro", 0.38), ("enterprise", 0.12))
APPS = {
    "code_help": ("acme-ide", "ide"),
    "summarisation": ("acme-docs", "web"),
    "support": ("acme-helpdesk", "helpdesk"),
    "sql": ("acme-analytics", "web"),
}
N_USERS = 420


@dataclass
class _User:
    user_id: str
    segment: str
    locale: str
    task: str
    weight: float


def _users(rng: Random) -> list[_User]:
    users = []
    for k in range(N_USERS):
        segment = rng.choices([s for s, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
        task = rng.choices(TASK_TYPES, list(TASK_WEIGHTS.values()))[0]
        # A few heavy users and a long tail, as in any product.
        weight = 1.0 / (k + 1) ** 0.75
        users.append(_User(f"acme-user-{k + 1:04d}", segment, rng.choice(LOCALES), task, weight))
    rng.shuffle(users)
    return users


def _timestamps(rng: Random, now: datetime, n: int) -> list[datetime]:
    start = now - timedelta(days=WINDOW_DAYS)
    span = (now - start).total_seconds() - 120
    out = []
    while len(out) < n:
        t = start + timedelta(seconds=rng.uniform(60, span))
        # Usage grew about 60% over the six weeks.
        growth = 0.75 + 0.45 * (t - start).total_seconds() / span
        weight = HOURLY[t.hour] * WEEKDAY[t.weekday()] * growth
        if rng.random() < weight / 1.2:
            out.append(t.replace(microsecond=0))
    return sorted(out)


def _model_for(rng: Random, t: datetime, now: datetime) -> str:
    age = (now - t).total_seconds() / 86400
    if age >= ROLLOUT_DAYS:
        return OLD_MODEL
    # Canary, then half, then nearly all traffic: one week each.
    share = 0.1 if age >= 14 else 0.5 if age >= 7 else 0.92
    return NEW_MODEL if rng.random() < share else OLD_MODEL


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _pii_value(rng: Random, slots: Mapping[str, str]) -> dict[str, str]:
    email = f"{slots['first']}.{slots['last']}@{rng.choice(PII_EMAIL_DOMAINS)}".lower()
    return {
        **slots,
        "email": email,
        "phone": rng.choice(PII_PHONES),
        "card": rng.choice(PII_CARDS),
    }


# --- drafts: one interaction's content and what users might do with it ---------------


@dataclass
class _Draft:
    task: str
    messages: list[dict]
    response: str
    # On-topic material the answer left out, which a user may add back: sentences, and
    # items for the answer's list (steps, bullets).
    spare: list[str] = field(default_factory=list)
    spare_items: list[str] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)  # what a user writing from scratch writes
    topic: str = ""


def _pick_in_order(rng: Random, items: tuple[str, ...], k: int) -> tuple[list[str], list[str]]:
    k = max(1, min(k, len(items)))
    chosen = set(rng.sample(range(len(items)), k))
    return (
        [x for i, x in enumerate(items) if i in chosen],
        [x for i, x in enumerate(items) if i not in chosen],
    )


def _join_blocks(blocks: list[str]) -> str:
    return "\n\n".join(b for b in blocks if b.strip())


def _support_answer(
    rng: Random, topic: SupportTopic, slots: dict[str, str], model: str, *, lookup: str = ""
):
    # The first step says where to go; without it the rest makes no sense.
    rest, spare_steps = _pick_in_order(rng, topic.steps[1:], rng.randint(2, len(topic.steps) - 1))
    steps = [topic.steps[0], *rest]
    notes, spare_notes = _pick_in_order(rng, topic.notes, rng.randint(1, 2))
    if rng.random() < 0.3:
        spare_notes, notes = spare_notes + notes, []
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    # The newer model was tuned to skip greetings: users complained about them.
    opener = rng.choice(SUPPORT_OPENERS) if model == OLD_MODEL or rng.random() < 0.3 else ""
    closer = rng.choice(SUPPORT_CLOSERS)
    blocks = [opener, lookup, rng.choice(topic.acks), numbered, " ".join(notes), closer]
    text = _fill(_join_blocks(blocks), slots)
    return text, [_fill(s, slots) for s in spare_notes], [_fill(s, slots) for s in spare_steps]


def _support(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(SUPPORT_TOPICS)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {_fill(rng.choice(PII_LINES), pii)}"
    # Half the time the model repeats the customer's email back: PII in the answer too.
    lookup = f"I've checked the account for {pii['email']}." if pii and rng.random() < 0.5 else ""
    response, spare, spare_items = _support_answer(rng, topic, slots, model, lookup=lookup)
    messages = [{"role": "system", "content": SUPPORT_SYSTEM[model]}]
    if topic.button and rng.random() < 0.14:
        button = {"button": topic.button}
        # A follow-up in the same conversation: the earlier answer becomes history.
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": response},
            {"role": "user", "content": _fill(rng.choice(SUPPORT_FOLLOWUPS), button)},
        ]
        response = _fill(rng.choice(SUPPORT_FOLLOWUP_ANSWERS), {**slots, **button})
        spare, spare_items = [_fill(s, slots) for s in topic.notes], []
    else:
        messages.append({"role": "user", "content": question})
    return _Draft(
        task="support",
        messages=messages,
        response=response,
        spare=spare,
        spare_items=spare_items,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _code_answer(
    rng: Random, topic, slots: dict[str, str], *, lang: str, intros: tuple[str, ...] = CODE_INTROS
) -> tuple[str, list]:
    explained, spare = _pick_in_order(rng, topic.explanations, rng.randint(2, 3))
    first, rest = explained[0], explained[1:]
    code = f"```{lang}\n{_fill(topic.code, slots)}\n```"
    blocks = [rng.choice(intros), first, code, " ".join(rest), rng.choice(CODE_OUTROS)]
    return _fill(_join_blocks(blocks), slots), [_fill(s, slots) for s in spare]


def _code_slots(rng: Random, slots: dict[str, str]) -> dict[str, str]:
    var = slots["var"]
    key1, key2, key3 = rng.sample(DICT_KEYS, 3)
    go_type = rng.choice(("Counter", "Tally", "Stats", "Index", "Histogram"))
    go_field = rng.choice(("counts", "seen", "byName", "hits"))
    return {
        **slots,
        "Var": var[:1].upper() + var[1:],
        "env_lower": slots["env"].lower(),
        "verb": rng.choice(("get", "fetch", "call", "request")),
        "attempts": str(rng.choice((3, 4, 5, 6))),
        "timeout": str(rng.choice((5, 10, 15, 30))),
        "cap": str(rng.choice((20, 30, 60))),
        "default": rng.choice(("30", "60", "5", "300", "10")),
        "dict": rng.choice(("cache", "settings", "counts", "prices", "sessions", "config")),
        "key1": key1,
        "key2": key2,
        "key3": key3,
        "Go": go_type,
        "field": go_field,
        # Built here: a literal brace right before a {{slot}} would read as a slot.
        "go_literal": f"{go_type}{{{go_field}: make(map[string]int)}}",
        "jsx_list": f"{{{var}.map((x) => <li key={{x.id}}>{{x.name}}</li>)}}",
        "limit": str(rng.choice((4, 8, 10, 16))),
        "Fetch": rng.choice(("Fetch", "Get", "Load", "Lookup")),
    }


def _code(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(CODE_TOPICS)
    slots = _code_slots(rng, slots)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question}\n\n{_fill(rng.choice(PII_CODE_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang=topic.lang)
    messages = [{"role": "system", "content": CODE_SYSTEM[model]}]
    if rng.random() < 0.1:
        # Earlier, unrelated question in the same chat session.
        earlier = rng.choice([t for t in CODE_TOPICS if t.key != topic.key])
        earlier_slots = _code_slots(rng, _slots(rng))
        earlier_answer, _ = _code_answer(rng, earlier, earlier_slots, lang=earlier.lang)
        messages += [
            {"role": "user", "content": _fill(earlier.questions[0], earlier_slots)},
            {"role": "assistant", "content": earlier_answer},
        ]
    messages.append({"role": "user", "content": question})
    return _Draft(
        task="code_help",
        messages=messages,
        response=response,
        spare=spare,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=f"{topic.lang}:{topic.key}",
    )


def _sql(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(SQL_TOPICS)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {_fill(rng.choice(PII_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang="sql", intros=SQL_INTROS)
    return _Draft(
        task="sql",
        messages=[
            {"role": "system", "content": SQL_SYSTEM},
            {"role": "user", "content": question},
        ],
        response=response,
        spare=spare,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_task(action: str) -> str:
    """'Nora: set up interviews' -> 'Nora to set up interviews', as minutes phrase it."""
    owner, _, task = action.partition(": ")
    return f"{owner} to {task}" if task else action


def _summary(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    kind = rng.choice(DOC_KINDS)
    slots = {**slots, "kind": kind.name}
    title = _fill(kind.title, slots)
    slots["doc_title"] = title
    facts, unused = _pick_in_order(rng, kind.facts, rng.randint(4, min(6, len(kind.facts))))
    filler = rng.sample(kind.filler, rng.randint(1, min(2, len(kind.filler))))
    lines = [_fill(f.full, slots) for f in facts]
    for sentence in filler:
        lines.insert(rng.randint(0, len(lines)), _fill(sentence, slots))
    if pii:
        lines.append(f"Contact: {pii['first']} {pii['last']}, {pii['email']}, {pii['phone']}.")
    bulleted = rng.random() < 0.5
    body = "\n".join(f"- {x}" for x in lines) if bulleted else " ".join(lines)
    document = f"{title}\n\n{body}"
    request = _fill(rng.choice(SUMMARY_REQUESTS), slots)
    k = int(slots["k"])
    n_shown = k if "bullet" in request else len(facts)
    if rng.random() < 0.2:
        n_shown += 1  # one more than asked for: a classic reason for a complaint
    summary_lines = [f"- {_capitalise(_fill(f.short, slots))}." for f in facts[:n_shown]]
    actions = [_fill(f.action, slots) for f in facts if f.action]
    slots["count"] = str(len(facts))
    intro = kind.lead if rng.random() < 0.5 else rng.choice(SUMMARY_INTROS)
    blocks = [_fill(intro, slots), "\n".join(summary_lines)]
    if actions and (rng.random() < 0.75 or "action items" in request):
        blocks.append("Action items:\n" + "\n".join(f"- {a}." for a in actions))
    if pii and rng.random() < 0.5:
        blocks.append(f"Contact for questions: {pii['email']}.")
    response = _join_blocks(blocks)
    missing = [_capitalise(_fill(f.short, slots)) + "." for f in list(facts[n_shown:]) + unused]
    messages = [
        {"role": "system", "content": SUMMARY_SYSTEM[model]},
        {"role": "user", "content": f"{request}\n\n{document}"},
    ]
    if rng.random() < 0.1:
        messages += [
            {"role": "assistant", "content": response},
            {"role": "user", "content": rng.choice(SUMMARY_FOLLOWUPS)},
        ]
        first, second = (_fill(f.short, slots) for f in facts[:2])
        response = f"{_capitalise(first)}; {second}. " + (
            f"Next: {_as_task(actions[0])}." if actions else "No action items."
        )
    slots["missing"] = missing[0].rstrip(".") if missing else "the action items"
    return _Draft(
        task="summarisation",
        messages=messages,
        response=response,
        spare_items=missing,
        complaints=[_fill(c, slots) for c in SUMMARY_COMPLAINTS],
        own=[
            f"{_capitalise(_fill(facts[-1].short, slots))}. Nothing else needs your attention.",
            f"Short version: {_fill(facts[0].short, slots)}. Details in the doc.",
        ],
        topic=kind.key,
    )


_BUILDERS = {"code_help": _code, "summarisation": _summary, "support": _support, "sql": _sql}


# --- edits -----------------------------------------------------------------------------


def char_similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / longer length: the edit-band measure curation uses."""
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else (longest - Levenshtein.distance(a, b)) / longest


_WORDS = re.compile(r"\w+")


def word_similarity(a: str, b: str) -> float:
    wa, wb = _WORDS.findall(a), _WORDS.findall(b)
    longest = max(len(wa), len(wb))
    return 1.0 if longest == 0 else (longest - Levenshtein.distance(wa, wb)) / longest


def _in_band(a: str, b: str) -> bool:
    return (
        BAND_LOW + 0.05 <= char_similarity(a, b) <= BAND_HIGH - 0.05
        and BAND_LOW <= word_similarity(a, b) <= BAND_HIGH
    )


_FENCE = re.compile(r"```.*?```", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\d])")


_LIST_ITEM = re.compile(r"(\d+\.|-) ")


@dataclass
class _Block:
    """A paragraph of an answer, split into the units a user deletes one at a time."""

    kind: str  # "code" (untouchable), "list" (items), "prose" (sentences), "salutation"
    units: list[str]
    header: str = ""  # a list's heading line, such as "Action items:"


_FORMULAE = frozenset(
    x for x in SUPPORT_OPENERS + SUPPORT_CLOSERS + CODE_INTROS + CODE_OUTROS + SQL_INTROS
    if "{{" not in x
)  # fmt: skip


def _blocks(text: str) -> list[_Block]:
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        header, items = ("", lines) if _LIST_ITEM.match(lines[0]) else (lines[0], lines[1:])
        if block.startswith("```"):
            blocks.append(_Block("code", [block]))
        elif items and all(_LIST_ITEM.match(line) for line in items):
            blocks.append(_Block("list", [_LIST_ITEM.sub("", x, count=1) for x in items], header))
        elif "\n" in block:
            blocks.append(_Block("code", [block]))
        elif block.endswith(",") or block in _FORMULAE:
            blocks.append(_Block("salutation", [block]))
        else:
            blocks.append(_Block("prose", _SENTENCE_END.split(block)))
    return blocks


def _render(blocks: list[_Block], numbered: bool) -> str:
    out = []
    for block in blocks:
        if not block.units:
            continue
        if block.kind == "list":
            items = [f"{n}. {x}" if numbered else f"- {x}" for n, x in enumerate(block.units, 1)]
            out.append("\n".join([block.header, *items] if block.header else items))
        else:
            out.append(" ".join(block.units))
    return "\n\n".join(out)


def _rewrite(
    rng: Random, text: str, spare: list[str], spare_items: list[str], *, lead: str = ""
) -> str:
    """Delete some sentences, steps or bullets and add on-topic ones: a user improving the
    answer. Code is kept as it is; lists stay lists."""
    numbered = bool(re.search(r"^1\. ", text, re.M))
    blocks = _blocks(text)
    # Code stays, and so does a numbered list's first step: it says where to start.
    units = [
        (b, j) for b, block in enumerate(blocks) if block.kind != "code"
        for j in range(len(block.units)) if not (numbered and block.kind == "list" and j == 0)
    ]  # fmt: skip
    if units:
        k = min(len(units) - 1, rng.randint(1, max(1, len(units) // 2)))
        drop = set(rng.sample(units, k=k))
        for b, block in enumerate(blocks):
            block.units = [u for j, u in enumerate(block.units) if (b, j) not in drop]
    blocks = [block for block in blocks if block.units]
    # Missing points go to the main list, not under a heading such as "Action items:".
    lists = [b for b in blocks if b.kind == "list" and not b.header] or [
        b for b in blocks if b.kind == "list"
    ]
    additions = [(x, True) for x in spare_items] if lists else []
    additions += [(x, False) for x in spare]
    for text_added, is_item in rng.sample(additions, k=min(len(additions), rng.randint(1, 2))):
        prose = [block for block in blocks if block.kind == "prose"]
        if is_item:
            target = rng.choice(lists)
            target.units.insert(
                rng.randint(min(1, len(target.units)), len(target.units)), text_added
            )
        elif prose and rng.random() < 0.5:
            target = rng.choice(prose)
            target.units.insert(rng.randint(0, len(target.units)), text_added)
        else:
            # Between greeting and sign-off, where a user would type it.
            low = 1 if blocks and blocks[0].kind == "salutation" else 0
            high = len(blocks) - (1 if len(blocks) > low and blocks[-1].kind == "salutation" else 0)
            blocks.insert(rng.randint(low, high), _Block("prose", [text_added]))
    if lead:
        blocks.insert(0, _Block("prose", [lead]))
    return _render(blocks, numbered)


def _substantial(rng: Random, draft: _Draft, *, lead: str = "") -> str:
    spare = draft.spare or ([] if draft.spare_items else draft.own)
    best, best_gap = None, math.inf
    for _ in range(40):
        candidate = _rewrite(rng, draft.response, spare, draft.spare_items, lead=lead)
        if _in_band(candidate, draft.response):
            return candidate
        gap = abs(char_similarity(candidate, draft.response) - 0.6)
        if gap < best_gap:
            best, best_gap = candidate, gap
    return best or draft.response + "\n\n" + draft.own[0]


def _complete(rng: Random, draft: _Draft) -> str:
    options = draft.own + list(GENERIC_OWN)
    first = rng.randrange(len(draft.own)) if draft.own else 0
    for text in options[first:] + options[:first]:
        if char_similarity(text, draft.response) < REWRITE_MAX - 0.05:
            return text
    return GENERIC_OWN[0]


_WORD_AT = r"(?<![\w`]){}(?![\w`])"


def _typo(rng: Random, draft: _Draft) -> bool:
    """Put a typo into the model's answer; the user's fix is the original. Only prose is
    touched: a typo in code would be a bug, not a typo."""
    text = draft.response
    code = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    spots = []
    for right, wrong in TYPOS:
        for m in re.finditer(_WORD_AT.format(right), text):
            if not any(a <= m.start() < b for a, b in code):
                spots.append((m.start(), m.end(), wrong))
    if not spots:
        return False
    for start, end, wrong in sorted(rng.sample(spots, k=min(len(spots), rng.randint(1, 2))))[::-1]:
        text = text[:start] + wrong + text[end:]
    if char_similarity(text, draft.response) <= TYPO_MIN:
        return False
    draft.response = text
    return True


# --- feedback plans ------------------------------------------------------------------

# What a user does after a good or a bad answer, by task: support agents accept or edit
# drafts, developers copy code, readers of summaries rate them.
_GOOD = {
    "support": {"accepted": 30, "thumbs_up": 18, "copied": 8, "rating": 8, "comment": 4,
                "typo": 12, "substantial": 8},
    "code_help": {"copied": 34, "thumbs_up": 26, "accepted": 6, "rating": 8, "comment": 5,
                  "typo": 5, "substantial": 4},
    "summarisation": {"thumbs_up": 26, "copied": 14, "rating": 18, "accepted": 6, "comment": 6,
                      "typo": 10, "substantial": 6},
    "sql": {"copied": 35, "thumbs_up": 25, "rating": 10, "typo": 4, "substantial": 6},
}  # fmt: skip
_BAD = {
    "support": {"thumbs_down": 18, "regenerated": 10, "rating": 6, "comment": 10,
                "substantial": 34, "complete": 14, "typo": 3},
    "code_help": {"thumbs_down": 28, "regenerated": 26, "rating": 6, "comment": 12,
                  "substantial": 16, "complete": 8, "typo": 1},
    "summarisation": {"thumbs_down": 22, "regenerated": 14, "rating": 14, "comment": 12,
                      "substantial": 26, "complete": 8, "typo": 2},
    "sql": {"thumbs_down": 25, "regenerated": 25, "comment": 15, "substantial": 20,
            "complete": 10},
}  # fmt: skip
_FOLLOW_UP = {
    "thumbs_up": ("copied", 0.3),
    "thumbs_down": ("comment", 0.35),
    "regenerated": ("thumbs_down", 0.25),
    "typo": ("accepted", 0.3),
    "substantial": ("comment", 0.2),
    "rating": ("comment", 0.15),
}
# Seconds between the answer and the user's action (low, high).
_DELAY = {
    "copied": (4, 240),
    "accepted": (10, 600),
    "thumbs_up": (8, 900),
    "thumbs_down": (8, 900),
    "rating": (30, 1800),
    "regenerated": (3, 90),
    "comment": (40, 2400),
    "edited": (60, 1500),
    "corrected": (120, 3600),
}


def _p_bad(task: str, model: str) -> float:
    base = 0.3 if model == OLD_MODEL else 0.19
    return base + {"sql": 0.1, "summarisation": -0.04}.get(task, 0.0)


@dataclass
class _Event:
    kind: str
    at: datetime
    value: int | str | None = None
    final_text: str | None = None


def _plan_feedback(
    rng: Random, draft: _Draft, model: str, t: datetime, now: datetime, pii: dict
) -> list[_Event]:
    bad = rng.random() < _p_bad(draft.task, model)
    # Unhappy users speak up a little more often than happy ones.
    if rng.random() >= (FEEDBACK_RATE + 0.06 if bad else FEEDBACK_RATE - 0.02):
        return []
    table = (_BAD if bad else _GOOD)[draft.task]
    action = rng.choices(list(table), list(table.values()))[0]
    actions = [action]
    follow = _FOLLOW_UP.get(action)
    if follow and rng.random() < follow[1]:
        actions.append(follow[0])
    events = []
    at = t
    for act in actions:
        kind = act
        value: int | str | None = None
        final_text = None
        if act == "rating":
            value = rng.choice((4, 5, 5, 4, 3)) if not bad else rng.choice((1, 2, 2, 1, 3))
        elif act == "comment":
            if rng.random() < PII_RATE:
                value = _fill(rng.choice(PII_COMMENTS), pii)
            elif bad:
                value = rng.choice(draft.complaints + list(NEGATIVE_COMMENTS))
            else:
                value = rng.choice(POSITIVE_COMMENTS)
        elif act == "typo":
            original = draft.response
            if not _typo(rng, draft):
                kind = "thumbs_up" if not bad else "thumbs_down"
            else:
                kind, final_text = "edited", original
        elif act == "substantial":
            kind = "edited" if rng.random() < 0.7 else "corrected"
            final_text = _substantial(rng, draft)
        elif act == "complete":
            kind = "corrected"
            final_text = _complete(rng, draft)
        if act in ("substantial", "complete") and rng.random() < PII_RATE:
            final_text = f"{final_text}\n\n{_fill(rng.choice(PII_EDIT_LINES), pii)}"
        low, high = _DELAY[kind]
        at = at + timedelta(seconds=rng.randint(low, high))
        if at >= now:
            # The user hasn't got round to it yet.
            break
        events.append(_Event(kind, at, value, final_text))
    return events


def _toxify(rng: Random, draft: _Draft, event: _Event) -> None:
    line = rng.choice(TOXIC_LINES)
    event.kind = "edited"
    event.final_text = _substantial(rng, draft, lead=line)


# --- assembling payloads -------------------------------------------------------------


def _usage(rng: Random, messages: list[dict], response: str) -> dict:
    # About four characters per token for English and code, plus a few per message.
    prompt = sum(len(m["content"]) for m in messages) / 4 + 4 * len(messages)
    prompt_tokens = round(prompt * rng.uniform(0.95, 1.08))
    completion_tokens = max(1, round(len(response) / 4 * rng.uniform(0.95, 1.08)))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _latency(rng: Random, model: str, usage: dict) -> int:
    tokens_per_s = 42 if model == OLD_MODEL else 68
    first_token = rng.lognormvariate(math.log(420 if model == OLD_MODEL else 300), 0.3)
    ms = first_token + usage["completion_tokens"] / tokens_per_s * 1000
    ms *= rng.lognormvariate(0, 0.12)
    if rng.random() < 0.02:
        ms *= rng.uniform(3, 6)  # the slow tail: cold caches, long queues
    return round(ms)


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(NAIVE_TIME.format(name=name))


def reference_before(now: datetime) -> datetime:
    """The latest `REFERENCE` plus whole weeks that is not after `now` (earlier ones for a
    `now` before `REFERENCE`): the demo's window ends within the week before `now`, and its
    data is the same as at `REFERENCE` but for the dates."""
    _check_aware("now", now)
    return REFERENCE + (now - REFERENCE) // WEEK * WEEK


def generate(
    *, seed: int = 7, reference: datetime = REFERENCE, n_interactions: int = 3000
) -> tuple[list[dict], list[dict]]:
    """Demo interactions and feedback as ingest payloads, in delivery order, in the six
    weeks before `reference` (nothing happens at or after it)."""
    _check_aware("reference", reference)
    if n_interactions < 1:
        raise ValueError(BAD_COUNT.format(n=n_interactions))
    # Hour-of-day and weekday patterns are in UTC, whatever zone the reference came in.
    now = reference.astimezone(UTC)
    rng = Random(seed)
    users = _users(rng)
    by_task = {task: [u for u in users if u.task == task] or users for task in TASK_TYPES}
    times = _timestamps(rng, now, n_interactions)
    sessions: dict[tuple[str, str], str] = {}
    interactions: list[dict] = []
    plans: list[list[_Event]] = []
    drafts: list[_Draft] = []
    for n, t in enumerate(times, 1):
        task = rng.choices(TASK_TYPES, list(TASK_WEIGHTS.values()))[0]
        pool = by_task[task]
        user = rng.choices(pool, [u.weight for u in pool])[0]
        model = _model_for(rng, t, now)
        slots = _slots(rng)
        pii = _pii_value(rng, slots)
        draft = _BUILDERS[task](rng, slots, model, pii if rng.random() < PII_RATE else None)
        events = _plan_feedback(rng, draft, model, t, now, pii)
        app, channel = APPS[task]
        session_key = (user.user_id, t.date().isoformat())
        sessions.setdefault(session_key, f"demo-s-{len(sessions) + 1:05d}")
        usage = _usage(rng, draft.messages, draft.response)
        interactions.append(
            {
                "event_id": INTERACTION_ID.format(n=n),
                "occurred_at": _iso(t),
                "model": model,
                "task_type": task,
                "messages": draft.messages,
                "response": draft.response,
                "usage": usage,
                "latency_ms": _latency(rng, model, usage),
                "user_id": user.user_id,
                "session_id": sessions[session_key],
                "segment": user.segment,
                "metadata": {
                    "app": app,
                    "channel": channel,
                    "app_version": "4.12.0" if (now - t).days < 18 else "4.11.2",
                    "locale": user.locale,
                    "prompt_version": f"{task}-v{4 if model == NEW_MODEL else 3}",
                    "topic": draft.topic,
                },
            }
        )
        plans.append(events)
        drafts.append(draft)

    _make_toxic(rng, plans, drafts)
    feedback = _feedback_payloads(rng, interactions, plans, now)
    return _deliver_late(rng, interactions, plans), feedback


def _make_toxic(rng: Random, plans: list[list[_Event]], drafts: list[_Draft]) -> None:
    edits = [
        (i, e)
        for i, events in enumerate(plans)
        for e in events
        if e.kind in ("edited", "corrected")
    ]
    if not edits:
        return
    # A fixed share rather than a coin per edit, so even a small demo shows some.
    for i, event in rng.sample(edits, k=max(1, round(len(edits) * TOXIC_EDIT_RATE))):
        _toxify(rng, drafts[i], event)


def _feedback_payloads(
    rng: Random, interactions: list[dict], plans: list[list[_Event]], now: datetime
) -> list[dict]:
    rows: list[tuple[datetime, dict]] = []
    for interaction, events in zip(interactions, plans, strict=True):
        for event in events:
            rows.append((event.at, _feedback_dict(interaction, event)))
    n_orphans = max(2, round(len(rows) * ORPHAN_RATE))
    for k in range(1, n_orphans + 1):
        at = now - timedelta(seconds=rng.randint(600, WINDOW_DAYS * 86400 - 600))
        orphan = _Event(rng.choice(("thumbs_up", "thumbs_down", "copied")), at)
        target = {
            "event_id": MISSING_ID.format(n=k),
            "user_id": rng.choice(interactions)["user_id"],
        }
        rows.append((at, _feedback_dict(target, orphan)))
    rows.sort(key=lambda row: row[0])
    out = []
    for n, (_, payload) in enumerate(rows, 1):
        out.append({"event_id": FEEDBACK_ID.format(n=n), **payload})
    return out


def _feedback_dict(interaction: dict, event: _Event) -> dict:
    payload = {
        "interaction_event_id": interaction["event_id"],
        "kind": event.kind,
        "occurred_at": _iso(event.at),
        "user_id": interaction["user_id"],
    }
    if event.value is not None:
        payload["value"] = event.value
    if event.final_text is not None:
        payload["final_text"] = event.final_text
    return payload


def _deliver_late(rng: Random, interactions: list[dict], plans: list[list[_Event]]) -> list[dict]:
    """Move a few interactions that have feedback to the end of the list: a logging
    pipeline that flushed late, so their feedback is stored before them."""
    cutoff = int(len(interactions) * 0.8)
    eligible = [i for i in range(cutoff) if plans[i]]
    if not eligible:
        return interactions
    late = set(
        rng.sample(eligible, k=max(1, min(len(eligible), round(len(interactions) * LATE_RATE))))
    )
    return [x for i, x in enumerate(interactions) if i not in late] + [
        interactions[i] for i in sorted(late)
    ]


# --- demo accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    created: bool
    # None when the account existed with another password: it is not ours to show.
    password: str | None


def demo_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        "admin_password": environ.get(ADMIN_PASSWORD_ENV) or DEFAULT_ADMIN_PASSWORD,
        "annotator_password": environ.get(ANNOTATOR_PASSWORD_ENV) or DEFAULT_ANNOTATOR_PASSWORD,
    }


def demo_users_create(*, admin_password: str, annotator_password: str) -> list[DemoUser]:
    """Create the demo admin (superuser) and annotator if missing. Existing accounts are
    left as they are: someone may have changed their password or rights on purpose."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import transaction

    user_model = get_user_model()
    # The last field is the role group (flywheel_site.access) the account joins.
    specs = (
        (
            ADMIN_USERNAME,
            admin_password,
            "superuser",
            {"is_staff": True, "is_superuser": True},
            "admin",
        ),
        (ANNOTATOR_USERNAME, annotator_password, "annotator", {}, "annotator"),
    )
    out = []
    with transaction.atomic():
        for username, password, role, flags, group in specs:
            user = user_model.objects.filter(username=username).first()
            if user is not None:
                # Passwords of existing accounts are left alone; the role is ensured
                # (accounts made before roles existed had none).
                user.groups.add(Group.objects.get_or_create(name=group)[0])
                shown = password if user.check_password(password) else None
                out.append(DemoUser(username, role, created=False, password=shown))
                continue
            candidate = user_model(username=username, **flags)
            try:
                validate_password(password, candidate)
            except ValidationError as error:
                raise ValueError(
                    WEAK_PASSWORD.format(username=username, problems=" ".join(error.messages))
                ) from None
            candidate.set_password(password)
            candidate.save()
            candidate.groups.add(Group.objects.get_or_create(name=group)[0])
            out.append(DemoUser(username, role, created=True, password=password))
    return out
