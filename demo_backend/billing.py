"""Billing records: bills, allocations, bank transactions and transfers, credit memos, client balances,
billable matters (derived from matters and their unbilled activities) and trust line items."""

from __future__ import annotations

import random

from .catalog import BANK_ACCOUNTS
from .model import Firm, Record
from .shapes import contact_ref, day, matter_ref, money, stamp, user_ref

COUNTS = {
    "bills": 30, "allocations": 20, "bank_transactions": 20, "bank_transfers": 10, "credit_memos": 10,
    "outstanding_client_balances": 15, "trust_line_items": 20,
}


def _account(index: int) -> Record:
    account_id, name, kind = BANK_ACCOUNTS[index]
    return {"id": account_id, "name": name, "type": kind}


def generate_billing(firm: Firm, rng: random.Random) -> None:
    matters = list(firm.matters.values())
    users = list(firm.users.values())
    contacts = [c for c in firm.contacts.values() if c["id"] > 10000 + len(firm.users)]

    def base(store: str) -> tuple[Record, Record, int]:
        rid = firm.allocate_id(store)
        minutes = rng.randrange(0, 60 * 24 * 600)
        rec: Record = {"id": rid, "etag": ""}
        return rec, rng.choice(matters), minutes

    def stamps(rec: Record, minutes: int) -> None:
        rec["created_at"] = stamp(minutes)
        rec["updated_at"] = stamp(minutes + rng.randrange(0, 60 * 24 * 30))

    for number in range(1, COUNTS["bills"] * firm.scale + 1):
        bill, matter, minutes = base("bills")
        total = money(rng.uniform(500, 25000))
        state = rng.choice(("draft", "awaiting_approval", "awaiting_payment", "paid", "void"))
        balance = 0.0 if state in ("paid", "void") else money(total * rng.choice((1.0, 0.5, 0.25)))
        bill.update(number=f"{number:05d}", state=state, kind="revenue_kind", issued_at=day(minutes // 1440),
                    due_at=day(minutes // 1440 + 30), subject=f"Invoice for {matter['display_number']}",
                    memo=None, total=total, balance=balance, paid=money(total - balance),
                    paid_at=stamp(minutes + 60 * 24 * 20) if state == "paid" else None)
        stamps(bill, minutes)
        bill.update(user=user_ref(rng.choice(users)), client=dict(matter["client"]), matters=[matter_ref(matter)])
        firm.bills[bill["id"]] = bill
    bills = list(firm.bills.values())

    for _ in range(COUNTS["allocations"] * firm.scale):
        rec, matter, minutes = base("allocations")
        bill = rng.choice(bills)
        rec.update(date=day(minutes // 1440), amount=money(rng.uniform(100, 5000)), interest=0.0, voided_at=None,
                   description="Payment received", has_online_payment=False, destroyable=True,
                   payment_type=rng.choice(("Payment", "Refund")))
        stamps(rec, minutes)
        rec.update(bill={"id": bill["id"], "number": bill["number"]}, matter=matter_ref(matter),
                   contact=dict(matter["client"]))
        firm.allocations[rec["id"]] = rec

    for _ in range(COUNTS["bank_transactions"] * firm.scale):
        rec, matter, minutes = base("bank_transactions")
        amount = money(rng.uniform(100, 20000))
        funds_in = rng.random() < 0.6
        rec.update(type="BankTransaction", date=day(minutes // 1440), amount=amount, currency="USD",
                   description=rng.choice(("Retainer deposit", "Settlement disbursement", "Cost reimbursement")),
                   transaction_type="Deposit" if funds_in else "Withdrawal", funds_in=amount if funds_in else 0.0,
                   funds_out=0.0 if funds_in else amount, source=rng.choice(("Check", "Wire", "ACH")),
                   confirmation=f"CONF-{rec['id']}")
        stamps(rec, minutes)
        rec.update(bank_account=_account(0), client=dict(matter["client"]), matter=matter_ref(matter))
        firm.bank_transactions[rec["id"]] = rec

    for _ in range(COUNTS["bank_transfers"] * firm.scale):
        rec, matter, minutes = base("bank_transfers")
        rec.update(amount=money(rng.uniform(100, 10000)), date=day(minutes // 1440),
                   description="Transfer earned fees to operating", primary_authorizer=rng.choice(users)["name"],
                   secondary_authorizer=None)
        stamps(rec, minutes)
        rec.update(client=dict(matter["client"]), matter=matter_ref(matter), source_account=_account(0),
                   destination_account=_account(1))
        firm.bank_transfers[rec["id"]] = rec

    for _ in range(COUNTS["credit_memos"] * firm.scale):
        rec, _matter, minutes = base("credit_memos")
        rec.update(date=day(minutes // 1440), amount=money(rng.uniform(50, 2000)),
                   description="Courtesy discount", discount=True, voided_at=None)
        stamps(rec, minutes)
        rec.update(user=user_ref(rng.choice(users)), contact=contact_ref(rng.choice(contacts)))
        firm.credit_memos[rec["id"]] = rec

    for _ in range(COUNTS["outstanding_client_balances"] * firm.scale):
        rec, matter, minutes = base("outstanding_client_balances")
        owed = [b for b in rng.sample(bills, k=min(3, len(bills))) if b["balance"] > 0][:2]
        rec.update(total_outstanding_balance=money(sum(b["balance"] for b in owed)),
                   last_payment_date=day(minutes // 1440), last_shared_date=None,
                   newest_issued_bill_due_date=day(minutes // 1440 + 30), pending_payments_total=0.0,
                   reminders_enabled=rng.random() < 0.5, associated_matter_ids=[matter["id"]])
        stamps(rec, minutes)
        rec.update(contact=dict(matter["client"]),
                   outstanding_bills=[{"id": b["id"], "number": b["number"]} for b in owed])
        firm.outstanding_client_balances[rec["id"]] = rec

    for _ in range(COUNTS["trust_line_items"] * firm.scale):
        rec, matter, minutes = base("trust_line_items")
        bill = rng.choice(bills)
        rec.update(date=day(minutes // 1440), total=money(rng.uniform(100, 5000)), note="Trust funds applied")
        stamps(rec, minutes)
        rec.update(bill={"id": bill["id"], "number": bill["number"]}, matter=matter_ref(matter),
                   client=dict(matter["client"]))
        firm.trust_line_items[rec["id"]] = rec

    _billable_matters(firm)


def _billable_matters(firm: Firm) -> None:
    hours: dict[int, float] = {}
    amounts: dict[int, float] = {}
    for activity in firm.activities.values():
        if activity["matter"] is None or activity["billed"] or activity["non_billable"]:
            continue
        mid = activity["matter"]["id"]
        amounts[mid] = amounts.get(mid, 0.0) + activity["total"]
        hours[mid] = hours.get(mid, 0.0) + (activity["rounded_quantity_in_hours"] or 0.0)
    for matter in firm.matters.values():
        if not matter["billable"]:
            continue
        mid = matter["id"]
        firm.billable_matters[mid] = {
            "id": mid, "etag": "", "display_number": matter["display_number"], "currency_code": "USD",
            "unbilled_hours": round(hours.get(mid, 0.0), 2), "unbilled_amount": money(amounts.get(mid, 0.0)),
            "amount_in_trust": money((mid * 37) % 5000), "created_at": matter["created_at"],
            "updated_at": matter["updated_at"], "client": dict(matter["client"]),
        }
