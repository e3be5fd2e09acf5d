"""The invented example directory of ``pocsync demo``.

Organisations, people and addresses are fictional (example.org); the State codes are real ISO 3166-1
alpha-3 codes with their real regional memberships, so the federation's scopes overlap as they do in
life: Austria and Germany are in both the EU and the OSCE, the United States and Canada in both the
OSCE and the ASEAN Regional Forum.
"""

from __future__ import annotations

SCOPES = {
    "un": "all",
    "eu": "AUT,BEL,DEU,EST,FRA,ITA,NLD,POL",
    "osce": "AUT,BEL,CAN,DEU,EST,FRA,ITA,NLD,POL,UKR,USA",
    "arf": "AUS,CAN,IDN,JPN,KOR,MYS,SGP,USA",
}
ORGS = {
    "un": "UN Office for Disarmament Affairs (demo)",
    "eu": "EU secretariat (demo)",
    "osce": "OSCE secretariat (demo)",
    "arf": "ARF secretariat (demo)",
}
TZ = {
    "AUT": "Europe/Vienna",
    "DEU": "Europe/Berlin",
    "FRA": "Europe/Paris",
    "EST": "Europe/Tallinn",
    "UKR": "Europe/Kyiv",
    "USA": "America/New_York",
    "JPN": "Asia/Tokyo",
    "IDN": "Asia/Jakarta",
    "CAN": "America/Toronto",
    "BRA": "America/Sao_Paulo",
}
PHONE = {
    "AUT": "+4315123456",
    "DEU": "+493012345678",
    "FRA": "+33123456789",
    "EST": "+3726123456",
    "UKR": "+380441234567",
    "USA": "+12025550123",
    "JPN": "+81312345678",
    "IDN": "+62211234567",
    "CAN": "+16135550123",
    "BRA": "+556132345678",
}


def technical(state: str, **over: object) -> dict[str, object]:
    e: dict[str, object] = {
        "state": state,
        "kind": "technical",
        "organisation": f"Fictional National CSIRT of {state}",
        "position": "Duty officer",
        "emails": [f"duty@csirt-{state.lower()}.example.org"],
        "phones": [PHONE[state]],
        "available_24_7": True,
        "timezone": TZ[state],
        "languages": ["en"],
    }
    e.update(over)
    return e


def diplomatic(state: str, person: str, **over: object) -> dict[str, object]:
    e: dict[str, object] = {
        "state": state,
        "kind": "diplomatic",
        "organisation": f"Fictional Ministry of Foreign Affairs of {state}",
        "position": "Cyber coordinator",
        "person": person,
        "emails": [f"cyber-diplo@mfa-{state.lower()}.example.org"],
        "timezone": TZ[state],
        "languages": ["en"],
    }
    e.update(over)
    return e


# (node, label, entries) — each step is one change-set at that node, in this order
SCENARIO = [
    (
        "eu",
        "EU lists its members' PoCs",
        [
            technical("AUT", networks=["eu-csirts"]),
            diplomatic("AUT", "A. Example", networks=["eu-cyber-ambassadors"]),
            technical("DEU", networks=["eu-csirts"]),
            technical("EST", networks=["eu-csirts"]),
            diplomatic("FRA", "C. Example"),
        ],
    ),
    (
        "osce",
        "OSCE lists its participating States' PoCs (Austria's diplomat differs: a stale listing)",
        [
            diplomatic("AUT", "B. Example", position="Head of cyber diplomacy", networks=["osce-cbm"]),
            technical("UKR", networks=["osce-cbm"]),
            technical("USA", networks=["osce-cbm"]),
            diplomatic("USA", "D. Example", networks=["osce-cbm"]),
        ],
    ),
    (
        "arf",
        "ARF lists its participants' PoCs",
        [
            technical("JPN", networks=["arf-poc"]),
            technical("IDN", networks=["arf-poc"]),
            technical("USA", networks=["arf-poc"], position="Watch officer"),
        ],
    ),
    ("un", "The UN directory adds a State outside the regional lists", [technical("BRA", networks=["un-global"])]),
    (
        "eu",
        "EU corrects Austria's diplomatic PoC (conflict on AUT/diplomatic: the later edit wins)",
        [diplomatic("AUT", "B. Example", position="Head of cyber diplomacy", networks=["eu-cyber-ambassadors"])],
    ),
]
