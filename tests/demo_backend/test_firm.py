"""The generated firm: determinism, sizes, users and the matter access the tests rely on."""

from __future__ import annotations

from demo_backend import generate_firm
from demo_backend.model import STORE_NAMES


def test_same_scale_and_seed_give_an_equal_firm() -> None:
    assert generate_firm(1, 7) == generate_firm(1, 7)
    assert generate_firm(1, 7) != generate_firm(1, 8)


def test_sizes_at_scale_one_and_linear_growth() -> None:
    one, two = generate_firm(1), generate_firm(2)
    sizes = {name: len(one.store(name)) for name in STORE_NAMES}
    assert sizes["users"] == 8 and sizes["contacts"] == 150 and sizes["matters"] == 40
    assert sizes["activities"] == 400 and sizes["relationships"] == 60 and sizes["damages"] == 20
    assert len(two.matters) == 80 and len(two.activities) == 800
    assert min(one.contacts) == 10001 and min(one.matters) == 20001 and min(one.activities) == 40001


def test_fixed_users_and_their_contact_cards() -> None:
    firm = generate_firm()
    assert (firm.users[1]["name"], firm.users[1]["roles"]) == ("Ada Admin", ["Administrator"])
    assert (firm.users[2]["name"], firm.users[2]["roles"]) == ("Rita Restricted", ["Attorney"])
    assert (firm.users[3]["name"], firm.users[3]["roles"]) == ("Sam Staff", ["Paralegal"])
    card = firm.users[2]["contact"]
    assert firm.contacts[card["id"]]["name"] == "Rita Restricted" and card["type"] == "Person"


def test_user_two_sees_some_matters_and_is_responsible_for_only_some() -> None:
    firm = generate_firm()
    visible = firm.accessible_matters(2)
    assert visible is not None and 0 < len(visible) < len(firm.matters)
    responsible = {m for m in visible if firm.matters[m]["responsible_attorney"]["id"] == 2}
    assert responsible and responsible != visible
    assert firm.accessible_matters(1) is None


def test_every_record_has_id_etag_and_timestamps() -> None:
    firm = generate_firm()
    for name in STORE_NAMES:
        for record in firm.store(name).values():
            assert record["etag"].startswith('"') and len(record["etag"]) == 34
            assert "created_at" in record and "updated_at" in record


def test_contacts_created_by_user_two_and_names_are_unique() -> None:
    firm = generate_firm()
    assert any(c["creator"]["id"] == 2 for c in firm.contacts.values())
    names = [c["name"] for c in firm.contacts.values()]
    assert len(set(names)) == len(names)
