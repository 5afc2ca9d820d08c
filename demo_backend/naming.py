"""Realistic, unique-ish names for the generated firm: people, companies, streets and matter words."""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Linh", "Marcus", "Dana", "Priya", "Gerald", "Anil", "Ray", "Sofia", "Mateo", "Hannah", "Omar", "Grace",
    "Diego", "Chloe", "Kwame", "Ingrid", "Tomas", "Aisha", "Felix", "Mei", "Rosa", "Elliot", "Naomi", "Victor",
    "Yara", "Hugo", "Leah", "Ravi", "Clara", "Jonah", "Amara", "Pavel", "Lucia", "Theo", "Keiko", "Samir",
    "Esther", "Bruno", "Ines", "Malik", "Greta", "Andre", "Zoe", "Idris", "Freya", "Caleb", "Nadia", "Oscar",
    "Lena", "Tariq", "Maren", "Emil", "Sienna", "Rafael", "Hazel", "Kofi", "Vera", "Dmitri", "Alma", "Wesley",
    "Farah", "Casper", "Juno", "Arjun", "Beatriz", "Lionel", "Tessa", "Nikolai", "Odette", "Quentin",
)
LAST_NAMES = (
    "Nguyen", "Ortega", "Whitfield", "Shah", "Moss", "Patel", "Kowalski", "Lindqvist", "Okafor", "Brennan",
    "Castellanos", "Haddad", "Fairbanks", "Yamamoto", "Delacroix", "Mbeki", "Sorensen", "Abernathy", "Quispe",
    "Rasmussen", "Villanueva", "Achterberg", "Oyelaran", "Costa", "Pemberton", "Iwasaki", "Marchetti", "Novak",
    "Hollister", "Szabo", "Ferreira", "Kaminski", "Gallagher", "Mendoza", "Ostrowski", "Takahashi", "Lindgren",
    "Abara", "Vasquez", "Whitcombe", "Petrov", "Alvarado", "Dunleavy", "Esposito", "Blackwood", "Kruger",
    "Montague", "Oduya", "Renner", "Salazar", "Thornton", "Underhill", "Valdivia", "Winslow", "Zielinski",
    "Ashworth", "Borrego", "Carrington", "Drummond", "Eastwood", "Fontaine", "Gutierrez", "Halvorsen",
    "Ibarra", "Jankowski", "Kessler", "Lachance", "Moreau", "Nakamura", "Oliveira", "Prescott", "Quinlan",
    "Rosenthal", "Stavros", "Tremblay", "Uchida", "Vandermeer", "Wexler", "Yilmaz", "Zamora",
)
MIDDLE_INITIALS = tuple("ABCDEFGHJKLMNPRSTVW")
COMPANY_PATTERNS = (
    "{a} & {b} LLP", "{a} Medical Group", "{c} Orthopedics", "{a} Insurance Co.", "{a} Logistics Inc.",
    "{c} Imaging Center", "{a}, {b} and Partners", "{c} Physical Therapy", "{a} Holdings LLC",
    "{c} Freight Lines", "{a} Court Reporting", "{c} Dental Group LLC", "{a} Forensic Engineering",
    "{c} Title & Escrow", "{a} Mutual Assurance", "{c} Chiropractic",
)
CITIES = (
    "Los Angeles", "Pasadena", "Long Beach", "Glendale", "Burbank", "Torrance", "Santa Monica", "Irvine",
    "Riverside", "Anaheim", "Valley", "Harbor", "Sierra", "Coastal", "Summit", "Redwood", "Mission",
)
STREETS = ("Alvarado St", "Sunset Blvd", "Figueroa St", "Main St", "Colorado Blvd", "Ocean Ave", "Grand Ave")


class NameMaker:
    """Draws person and company names from the pools, never the same full name twice."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def person(self) -> tuple[str, str | None, str, str]:
        """(first, middle, last, full name)."""
        rng = self._rng
        for attempt in range(60):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            middle = rng.choice(MIDDLE_INITIALS) + "." if attempt > 3 or rng.random() < 0.2 else None
            full = f"{first} {middle} {last}" if middle else f"{first} {last}"
            if full not in self._used:
                self._used.add(full)
                return first, middle, last, full
        last = f"{rng.choice(LAST_NAMES)}-{rng.choice(LAST_NAMES)}"
        return self._numbered(rng.choice(FIRST_NAMES), last)

    def _numbered(self, first: str, last: str) -> tuple[str, str | None, str, str]:
        n = 2
        while f"{first} {last} {n}" in self._used:
            n += 1
        full = f"{first} {last} {n}"
        self._used.add(full)
        return first, None, last, full

    def company(self) -> str:
        rng = self._rng
        for _ in range(60):
            name = rng.choice(COMPANY_PATTERNS).format(
                a=rng.choice(LAST_NAMES), b=rng.choice(LAST_NAMES), c=rng.choice(CITIES)
            )
            if name not in self._used:
                self._used.add(name)
                return name
        n = 2
        base = f"{rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)} Group"
        while f"{base} {n}" in self._used:
            n += 1
        self._used.add(f"{base} {n}")
        return f"{base} {n}"
