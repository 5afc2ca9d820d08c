"""The page every benchmark row asks for: activities with many fields, nested ones included (~760
bytes a record), as many records as make ~100 KB (the limit is chosen from a measurement)."""

from __future__ import annotations

FIELDS = ("id,etag,type,date,quantity,rounded_quantity,quantity_in_hours,rounded_quantity_in_hours,"
          "quantity_redacted,price,total,non_billable,non_billable_total,no_charge,billed,on_bill,flat_rate,"
          "contingency_fee,note,created_at,updated_at,matter{id,display_number},user{id,name},"
          "activity_description{id,name},expense_category{id,name},vendor{id,name,type},calendar_entry,"
          "communication,task")
PAGE_BYTES = 100_000
