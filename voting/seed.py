"""`voting seed --nominations N`: realistic accepted nominations for demos and load tests.

Each seeded nomination would pass the submission rules: a summary inside the edition's
word limits, a real ISO country and language, an http(s) website, a start date in the
past, at most the edition's number of projects per organization and category, and no
title twice from one organization (checked against what the edition already holds).
Rows go in with COPY, a few hundred per transaction, behind a progress bar (tqdm: the
usual one, it handles terminals, pipes and logs without help).
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from tqdm import tqdm

from . import accounts, edition_store
from .contest import Edition
from .nominations import issue_public_ids
from .nominations.fields import WORD, count_words, country_name, normalize_key

SEED_OWNER = "seed@wsis.invalid"
BATCH = 500

# Countries from every region, as ISO 3166-1 codes; the names come from pycountry.
COUNTRIES = (
    "AE AF AM AR AU AZ BD BF BJ BR BT BW CA CH CL CM CN CO CR CZ DE DK DO DZ EC EE EG ES ET "
    "FI FJ FR GB GE GH GR GT ID IE IN IR IT JM JO JP KE KG KH KR KZ LB LK LT MA MD MG MN MU "
    "MW MX MY NA NG NL NO NP NZ OM PE PH PK PL PT PY QA RO RS RU RW SA SE SG SN TH TN TR TT "
    "TZ UA UG US UY UZ VN ZA ZM ZW"
).split()
LANGUAGES = ("fr", "es", "ar", "ru", "zh", "pt", "sw", "hi", "bn", "id", "tr", "de", "am", "ha")

ORGANIZATIONS: dict[str, tuple[str, ...]] = {
    "government": (
        "Ministry of ICT and Innovation, {country}",
        "Ministry of Digital Economy, {country}",
        "National Telecommunications Regulatory Authority of {country}",
        "e-Government Agency of {country}",
        "National Information Society Agency, {country}",
        "Ministry of Health, {country}",
        "Ministry of Education, {country}",
        "National Statistics Office of {country}",
    ),
    "private_sector": (
        "{word} Digital Solutions",
        "{word} Telecom",
        "{word} Networks",
        "{word}Tech Labs",
        "{word} Mobile Money",
        "{word} Data Systems",
    ),
    "civil_society": (
        "{country} Digital Inclusion Network",
        "Women in Technology {country}",
        "Open Knowledge {country}",
        "{country} Community Radio Association",
        "Youth Coding Initiative {country}",
    ),
    "international_organization": (
        "Regional ICT Centre for {region}",
        "{region} Broadband Alliance",
        "{region} Digital Health Partnership",
    ),
    "academia": (
        "National University of {country}",
        "{country} Institute of Technology",
        "{word} University of Science and Technology",
    ),
}
WORDS = (
    "Andes", "Sahel", "Baobab", "Lotus", "Nile", "Atlas", "Kilimanjaro", "Mekong", "Pacific",
    "Aurora", "Horizon", "Savanna", "Delta", "Zenith", "Cedar", "Monsoon", "Tundra", "Volta",
    "Orinoco", "Himalaya", "Caspian", "Amazonia", "Zambezi", "Danube", "Coral", "Meridian",
)  # fmt: skip
REGIONS = (
    "Africa", "the Arab States", "Asia and the Pacific", "the Americas", "Europe",
    "the Caribbean", "Central Asia", "Small Island Developing States",
)  # fmt: skip

# What projects in each kind of category are about.
THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "default": (
        ("Digital", "Open", "Smart", "Connected", "Inclusive", "Community", "National"),
        ("Services Platform", "Skills Programme", "Access Initiative", "Data Portal", "Network"),
    ),
    "C2": (("Rural", "Last-Mile", "Community", "Solar-Powered"), ("Broadband", "Wi-Fi Network")),
    "C4": (("Digital", "Coding", "Cyber"), ("Skills Academy", "Literacy Programme", "Bootcamp")),
    "C5": (("Cyber", "Online", "Child"), ("Security Centre", "Safety Programme", "CERT")),
    "C7-EGOV": (("One-Stop", "Digital", "Mobile"), ("Government Portal", "ID Service")),
    "C7-EHEALTH": (("Telemedicine", "Maternal", "Digital"), ("Health Network", "Health Records")),
    "C7-ELEARN": (("Open", "Mobile", "Virtual"), ("Classroom", "Learning Platform")),
    "C7-EAGRI": (("Smart", "Mobile", "Climate-Smart"), ("Farming Advisory", "Market Prices")),
    "C7-EENV": (("Early", "Climate", "Flood"), ("Warning System", "Monitoring Network")),
    "C7-EBUS": (("Mobile", "Digital", "Women's"), ("Payments", "Marketplace", "Trade Portal")),
    "C8": (("Local", "Indigenous", "Multilingual"), ("Content Library", "Language Archive")),
    "C9": (("Community", "Independent", "Digital"), ("Radio Network", "News Platform")),
}
BENEFICIARIES = (
    "rural communities", "women entrepreneurs", "smallholder farmers", "persons with "
    "disabilities", "secondary school students", "older people", "refugees and migrants",
    "small businesses", "indigenous communities", "young people", "health workers",
)  # fmt: skip
SENTENCES = (
    "{title} brings {focus} to {beneficiaries} across {country}.",
    "The project was launched by {organization} in {year} and now reaches more than "
    "{people} people.",
    "It answers a simple need: reliable, affordable and safe access to information and "
    "services where they were missing.",
    "Local partners co-designed every service, so that it works on the phones and "
    "connections people already have.",
    "Content is available in several languages and follows accessibility guidelines, "
    "including for screen readers.",
    "Training sessions in {places} communities helped first-time users gain confidence "
    "online.",
    "An open data policy lets researchers, journalists and other agencies reuse what the "
    "project collects.",
    "Costs were kept low by reusing open-source software and shared public infrastructure.",
    "Independent evaluations found measurable gains in income, learning and time saved for "
    "{beneficiaries}.",
    "The team publishes its lessons learned so that neighbouring countries can adapt the "
    "model.",
    "Privacy and security were built in from the start, with clear consent and data "
    "protection rules.",
    "A helpline and community champions support people who need help in their own language.",
    "The project contributes to the WSIS action lines and to the Sustainable Development "
    "Goals.",
    "Next, {organization} plans to extend the service to {places} more districts by the end "
    "of the decade.",
    "Government, business, civil society and academia each play a part in running it.",
    "Usage data guide monthly improvements, and feedback from users is published every "
    "quarter.",
    "The approach has already been adopted by two other regions, with support from "
    "international partners.",
    "Women make up more than half of the active users, a result of deliberate outreach.",
)  # fmt: skip
PARTNERS = (
    "ITU", "UNESCO", "UNDP", "UNICEF", "World Bank", "GSMA", "Internet Society",
    "local municipalities", "national broadband operator", "African Development Bank",
    "regional universities", "community radio stations",
)  # fmt: skip


def _domain(organization: str, country: str) -> str:
    """ "Open Knowledge Kenya" -> open-knowledge-kenya; long names by their initials."""
    words = re.sub(r"[^a-z0-9 ]+", "", normalize_key(organization)).split()
    slug = "-".join(words)
    if len(slug) > 24:
        slug = "".join(w[0] for w in words if w not in ("of", "and", "for", "the"))
        slug = f"{slug}-{country.lower()}"
    return slug


class _Generator:
    def __init__(self, edition: Edition, rng: random.Random, today: date) -> None:
        self.edition = edition
        self.rng = rng
        self.today = today
        rules = edition.rules.nominations
        self.limit = rules.nominations_per_organization_per_category
        self.low = rules.summary_words_min
        self.high = rules.summary_words_max
        self.per_org_category: Counter[tuple[str, str]] = Counter()
        self.titles: set[tuple[str, str]] = set()

    def _organization(self) -> tuple[str, str, str]:
        kind = self.rng.choice(tuple(ORGANIZATIONS))
        country = self.rng.choice(COUNTRIES)
        name = self.rng.choice(ORGANIZATIONS[kind]).format(
            country=country_name(country),
            word=self.rng.choice(WORDS),
            region=self.rng.choice(REGIONS),
        )
        return kind, country, name

    def _title(self, category: str) -> str:
        key = category if category in THEMES else "default"
        adjectives, nouns = THEMES[key]
        title = f"{self.rng.choice(adjectives)} {self.rng.choice(nouns)}"
        if self.rng.random() < 0.6:
            title += f" for {self.rng.choice(BENEFICIARIES).title()}"
        if self.rng.random() < 0.4:
            title = f"{self.rng.choice(WORDS)}{self.rng.choice(('Net', 'Link', 'Hub'))}: {title}"
        return title

    def _summary(self, context: dict[str, Any]) -> str:
        """Whole sentences, between the edition's word limits (cut mid-sentence only when
        the limits are narrower than a sentence)."""
        target = self.rng.randint(self.low, self.high)
        sentences = [SENTENCES[0].format(**context)]  # what it is, then the rest
        total = count_words(sentences[0])
        pool: list[str] = []
        while total <= self.high:
            if not pool:
                pool = list(SENTENCES[1:])
                self.rng.shuffle(pool)
            sentences.append(pool.pop().format(**context))
            total += count_words(sentences[-1])
        kept: list[str] = []
        words = 0
        for sentence in sentences:  # greedy: skip a sentence that would overshoot
            size = count_words(sentence)
            if words + size <= target:
                kept.append(sentence)
                words += size
        if words >= self.low:
            return " ".join(kept)
        text = " ".join(sentences)
        ends = [m.end() for m in WORD.finditer(text)]
        return text[: ends[target - 1]] + "." if target else ""

    def one(self, category: str) -> dict[str, Any] | None:
        for _ in range(50):
            kind, country, organization = self._organization()
            org_key = normalize_key(organization)
            if self.per_org_category[(org_key, category)] >= self.limit:
                continue
            title = self._title(category)
            if (org_key, normalize_key(title)) in self.titles:
                continue
            break
        else:
            return None
        self.per_org_category[(org_key, category)] += 1
        self.titles.add((org_key, normalize_key(title)))
        start = self.today - timedelta(days=self.rng.randint(365, 365 * 15))
        context = {
            "title": title,
            "organization": organization,
            "country": country_name(country),
            "beneficiaries": self.rng.choice(BENEFICIARIES),
            "focus": self.rng.choice(("digital services", "connectivity", "online learning")),
            "year": start.year,
            "people": f"{self.rng.randint(2, 900) * 1000:,}",
            "places": self.rng.randint(3, 60),
        }
        summary = self._summary(context)
        description = "\n\n".join(
            " ".join(self.rng.sample(SENTENCES, 4)).format(**context) for _ in range(3)
        )
        domain = f"{_domain(organization, country)}.{self.rng.choice(('org', 'net', 'com'))}"
        languages = ["en", *self.rng.sample(LANGUAGES, self.rng.randint(0, 3))]
        return {
            "category": category,
            "title": title,
            "title_key": normalize_key(title),
            "organization": organization,
            "organization_key": org_key,
            "stakeholder_type": kind,
            "country": country,
            "website": f"https://www.{domain}/",
            "start_date": start,
            "contact_email": f"prizes@{domain}",
            "summary": summary,
            "description": description,
            "partners": self.rng.sample(PARTNERS, self.rng.randint(0, 3)),
            "languages": languages,
            "search_text": normalize_key(
                f"{title} {organization} {country} {country_name(country)}"
            ),
        }


_COLUMNS = (
    "public_id", "edition_id", "owner_id", "status", "category", "title", "title_key",
    "organization", "organization_key", "stakeholder_type", "country", "website",
    "start_date", "contact_email", "summary", "description", "partners", "languages",
    "search_text", "created_at", "updated_at", "submitted_at", "decided_at",
)  # fmt: skip


async def seed_nominations(
    conn: asyncpg.Connection,
    count: int,
    *,
    edition_slug: str | None = None,
    seed: int | None = None,
    now: datetime | None = None,
    progress: bool = True,
) -> int:
    """Insert `count` accepted nominations, spread evenly over the edition's categories."""
    if count < 0:
        raise ValueError("the number of nominations cannot be negative")
    edition = (
        await edition_store.get_edition(conn, edition_slug)
        if edition_slug
        else await edition_store.current_edition(conn)
    )
    if edition is None:
        raise LookupError(f"no edition {edition_slug!r}" if edition_slug else "no current edition")
    eid = await edition_store.edition_id(conn, edition.slug)
    now = now or datetime.now(UTC)
    owner = await accounts.get_or_create(conn, SEED_OWNER)
    generator = _Generator(edition, random.Random(seed), now.astimezone(edition.tz).date())
    for row in await conn.fetch(
        "SELECT organization_key, title_key, category FROM nominations"
        " WHERE edition_id = $1 AND status <> 'draft'",
        eid,
    ):
        generator.per_org_category[(row["organization_key"], row["category"])] += 1
        generator.titles.add((row["organization_key"], row["title_key"]))
    codes = [c.code for c in edition.categories]
    start = generator.rng.randrange(len(codes))
    made = 0
    bar = tqdm(total=count, unit="nomination", disable=not progress, file=sys.stderr)
    try:
        while made < count:
            size = min(BATCH, count - made)
            rows = []
            for i in range(size):
                fields = generator.one(codes[(start + made + i) % len(codes)])
                if fields is not None:
                    rows.append(fields)
            if not rows:
                raise RuntimeError("could not generate more distinct nominations")
            async with conn.transaction():
                ids = await issue_public_ids(conn, len(rows))
                records = [
                    (
                        pid,
                        eid,
                        owner.id,
                        "accepted",
                        *(r[c] for c in _COLUMNS[4:19]),
                        now,
                        now,
                        now,
                        now,
                    )
                    for pid, r in zip(ids, rows, strict=True)
                ]
                await conn.copy_records_to_table("nominations", records=records, columns=_COLUMNS)
            made += len(rows)
            bar.update(len(rows))
            if len(rows) < size:
                break  # the generator ran out of distinct organizations and titles
        await edition_store.audit(
            conn,
            actor="cli",
            action="nomination.seed",
            edition=edition.slug,
            detail={"count": made},
        )
    finally:
        bar.close()
    return made
