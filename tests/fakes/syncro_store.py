"""syncro_store: the data model and endpoint semantics of the fake Syncro MSP API.

No HTTP here: fake_syncro.py parses requests, checks auth/rate/faults and calls
Store.call(op, ...). Each op returns (status, json_obj) or raises ApiError with
the body Syncro would send. Shapes, field names and error bodies follow
/work/shared/reference/syncro-openapi.json and syncro-api.md; every place where
the fake had to guess is marked "GUESS" and listed in SYNCRO.md.

Not thread-safe: the caller serialises calls with one lock.
"""

import math
import random
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

ACCOUNT_ID = 1
NOT_FOUND = {"message": "Not found"}
UNAUTHORIZED = {"error": "Not authorized. Please ask account admin to update your group permissions."}

# Page sizes: contacts 50 / customers 100 (spec examples + live), tickets 50 (live),
# invoices 25 (live), products/schedules 25 (spec text), comments 10 (spec, per_page).
PAGE_SIZE = {"contacts": 50, "customers": 100, "tickets": 50, "invoices": 25,
             "products": 25, "schedules": 25, "comments": 10}

# First id handed out per kind (ids are per-kind counters, so runs are deterministic).
FIRST_ID = {"customer": 101, "contact": 1001, "ticket": 5001, "ticket_number": 1001,
            "comment": 20001, "invoice": 7001, "invoice_number": 1001, "line_item": 9001,
            "schedule": 301, "schedule_line_item": 3001, "product": 501}

TICKET_STATUSES = ["New", "In Progress", "Resolved", "Invoiced", "Waiting for Parts",
                   "Waiting on Customer", "Scheduled", "Customer Reply"]
FREQUENCIES = ["Daily", "Monthly", "Weekly", "Biweekly", "Quarterly", "Semi-Annually",
               "Annually", "Biennially", "Triennially"]

# GUESS: Syncro's exact e-mail rule is unknown; this accepts local@domain.tld without spaces.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


class ApiError(Exception):
    """An API answer other than success: status plus the JSON body Syncro sends."""

    def __init__(self, status, body):
        super().__init__(status)
        self.status = status
        self.body = body


# ---------------------------------------------------------------- value helpers

def iso_now():
    t = datetime.now(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def parse_time(value):
    """ISO date or date-time string -> aware datetime, or None when unparseable."""
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip()
    try:
        if len(v) == 10:
            return datetime.fromisoformat(v).replace(tzinfo=timezone.utc)
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def norm_time(value):
    """A date/date-time as Syncro renders it ("2019-11-06T00:00:00.000Z"); None if blank/bad."""
    t = parse_time(value)
    if t is None:
        return None
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def to_int(value):
    """Rails-style integer cast: ints and digit strings; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def to_bool(value, default=False):
    """Rails boolean cast ("true"/"1"/"t" true, "false"/"0"/"f"/"" false)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value).strip().lower() in ("true", "1", "t", "yes", "y", "on")


def to_str(value):
    """String attribute cast: None stays None, scalars become strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return str(value)


def to_dec(value, default="0"):
    if value is None or value == "":
        return Decimal(default)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(default)


def money(d):
    """Rails BigDecimal#to_s as used in Syncro JSON: 10 -> "10.0", 12.50 -> "12.5"."""
    s = format(Decimal(d).normalize(), "f")
    return s if "." in s else s + ".0"


def like(haystack, needle):
    """SQL ILIKE '%needle%'."""
    return haystack is not None and needle.lower() in str(haystack).lower()


class IdIndex:
    """A set of ids with a lazily sorted view: O(1) append of growing ids, paging without O(n^2)."""

    __slots__ = ("_set", "_sorted", "_dirty")

    def __init__(self):
        self._set = set()
        self._sorted = []
        self._dirty = False

    def add(self, i):
        self._set.add(i)
        if not self._dirty and (not self._sorted or i > self._sorted[-1]):
            self._sorted.append(i)
        else:
            self._dirty = True

    def discard(self, i):
        if i in self._set:
            self._set.discard(i)
            self._dirty = True

    def ids(self):
        if self._dirty:
            self._sorted = sorted(self._set)
            self._dirty = False
        return self._sorted

    def __len__(self):
        return len(self._set)


def page_param(params):
    """1-based ?page=; GUESS: missing, non-numeric or < 1 means page 1."""
    p = to_int(first(params, "page"))
    return p if p and p > 0 else 1


def first(params, name, default=None):
    v = params.get(name)
    return v[0] if v else default


def id_list(params, name):
    """Rails array param: name[]=1&name[]=2 (also name=1,2 / name=1)."""
    out = set()
    for key in (name + "[]", name):
        for v in params.get(key, []):
            for part in str(v).split(","):
                i = to_int(part)
                if i is not None:
                    out.add(i)
    return out


def paginate(items, page, per_page):
    """Slice page (1-based) of a list; returns (slice, total_pages, total_entries)."""
    total = len(items)
    start = (page - 1) * per_page
    # GUESS: total_pages is 0 for an empty list (will_paginate/kaminari arithmetic).
    return items[start:start + per_page], math.ceil(total / per_page), total


def blank(v):
    return v is None or (isinstance(v, str) and not v.strip())


# ---------------------------------------------------------------- the store

CONTACT_FIELDS = ["name", "address1", "address2", "city", "state", "zip", "email", "phone",
                  "mobile", "notes", "extension"]
CUSTOMER_STR_FIELDS = ["firstname", "lastname", "business_name", "email", "phone", "mobile",
                       "address", "address_2", "city", "state", "zip", "notes", "referred_by",
                       "notification_email", "invoice_cc_emails"]
CUSTOMER_BOOL_FIELDS = ["get_sms", "opt_out", "no_email"]
CUSTOMER_INT_FIELDS = ["ref_customer_id", "tax_rate_id", "invoice_term_id"]


class Store:
    """All fake Syncro records plus the endpoint operations (op name -> method)."""

    def __init__(self, page_size=None):
        self.page_size = dict(PAGE_SIZE)
        if page_size:
            self.page_size.update(page_size)
        self.customers = {}          # id -> record (no embedded contacts)
        self.customer_index = IdIndex()
        self.contacts = {}           # id -> flat contact, spec field order
        self.contact_index = IdIndex()
        self.contacts_by_customer = {}   # customer_id -> IdIndex
        self.tickets = {}            # id -> core ticket record
        self.ticket_index = IdIndex()
        self.comments = {}           # id -> comment
        self.comments_by_ticket = {}  # ticket_id -> [comment ids]
        self.invoices = {}           # id -> invoice record
        self.invoice_index = IdIndex()
        self.line_items = {}         # id -> invoice line item
        self.items_by_invoice = {}   # invoice_id -> [line item ids]
        self.products = {}
        self.product_index = IdIndex()
        self.schedules = {}
        self.schedule_index = IdIndex()
        self.schedule_lines = {}     # id -> schedule line item
        self.lines_by_schedule = {}  # schedule_id -> [ids]
        self.next_id = dict(FIRST_ID)

    # ------------------------------------------------------------ ids
    def _new_id(self, kind, wanted=None):
        """Hands out the next id of a kind, or takes an explicit one (seeding) and moves past it."""
        if wanted is not None:
            i = to_int(wanted)
            if i is None:
                raise ApiError(400, {"error": "bad id %r" % (wanted,)})
            self.next_id[kind] = max(self.next_id[kind], i + 1)
            return i
        i = self.next_id[kind]
        self.next_id[kind] = i + 1
        return i

    def call(self, op, params, body, args):
        return getattr(self, "op_" + op)(params, body, *args)

    # ------------------------------------------------------------ serialisers
    def customer_json(self, c, with_contacts=True, detail=False):
        out = dict(c)
        out.pop("_extra", None)
        if with_contacts:
            idx = self.contacts_by_customer.get(c["id"])
            out["contacts"] = [self.contacts[i] for i in idx.ids()] if idx else []
        if detail:
            # Live detail GETs are richer (phones[], contracts[], addresses[]).
            phones = []
            for label, key in (("Phone", "phone"), ("Mobile", "mobile")):
                if c.get(key):
                    phones.append({"id": c["id"] * 10 + len(phones) + 1, "label": label,
                                   "number": re.sub(r"\D", "", c[key]), "customer_id": c["id"],
                                   "created_at": c["created_at"], "updated_at": c["updated_at"],
                                   "extension": None})
            out["phones"] = phones
            out["contracts"] = []
            out["addresses"] = []
        return out

    def _customer_names(self, c):
        full = " ".join(x for x in (c.get("firstname"), c.get("lastname")) if x) or None
        c["fullname"] = full
        biz = c.get("business_name") or None
        # GUESS: "Business - Full Name" when both exist (example only shows the no-business case).
        c["business_and_full_name"] = " - ".join(x for x in (biz, full) if x) or None
        c["business_then_name"] = biz or full

    # ------------------------------------------------------------ customers
    def _customer_assign(self, c, body):
        for f in CUSTOMER_STR_FIELDS:
            if f in body:
                c[f] = to_str(body[f])
        for f in CUSTOMER_BOOL_FIELDS:
            if f in body:
                c[f] = to_bool(body[f])
        for f in CUSTOMER_INT_FIELDS:
            if f in body:
                c[f] = to_int(body[f])
        if "properties" in body and isinstance(body["properties"], dict):
            c["properties"] = dict(body["properties"])
        # get_billing/get_marketing/get_reports/consent are accepted but not returned (spec).
        for f in ("get_billing", "get_marketing", "get_reports", "consent"):
            if f in body:
                c["_extra"][f] = body[f]
        self._customer_names(c)

    def _customer_blank(self):
        return {"id": None, "firstname": None, "lastname": None, "fullname": None,
                "business_name": None, "email": None, "phone": None, "mobile": None,
                "created_at": None, "updated_at": None, "pdf_url": None, "address": None,
                "address_2": None, "city": None, "state": None, "zip": None, "latitude": None,
                "longitude": None, "notes": None, "get_sms": False, "opt_out": False,
                "disabled": False, "no_email": False, "location_name": None, "location_id": None,
                "properties": {}, "online_profile_url": None, "tax_rate_id": None,
                "notification_email": None, "invoice_cc_emails": None, "invoice_term_id": None,
                "referred_by": None, "ref_customer_id": None, "business_and_full_name": None,
                "business_then_name": None, "_extra": {}}

    def _customer_errors(self, c):
        errs = []
        if c.get("email") and not EMAIL_RE.match(c["email"]):
            errs.append("Email is not an email")
        return errs

    def add_customer(self, body, validate=True):
        """Creates a customer from API-shaped fields (seeding allows id, disabled, timestamps)."""
        c = self._customer_blank()
        self._customer_assign(c, body)
        if validate:
            errs = self._customer_errors(c)
            if errs:
                raise ApiError(422, {"success": False, "message": errs, "params": dict(body)})
        else:
            for f in ("disabled", "latitude", "longitude", "location_name", "location_id"):
                if f in body:
                    c[f] = body[f]
        c["id"] = self._new_id("customer", body.get("id") if not validate else None)
        now = iso_now()
        c["created_at"] = body.get("created_at") if not validate and body.get("created_at") else now
        c["updated_at"] = body.get("updated_at") if not validate and body.get("updated_at") else now
        c["online_profile_url"] = ("http://fake.syncromsp.local/my_profile/v2/index?portal_key=fake%08d"
                                   % c["id"])
        self.customers[c["id"]] = c
        self.customer_index.add(c["id"])
        self.contacts_by_customer.setdefault(c["id"], IdIndex())
        return c

    def _customer(self, cid):
        c = self.customers.get(to_int(cid))
        if c is None:
            raise ApiError(404, NOT_FOUND)   # GUESS: customers 404 has no documented body
        return c

    def op_customers_list(self, params, body):
        want_ids = id_list(params, "id")
        not_ids = id_list(params, "not_id")
        include_disabled = to_bool(first(params, "include_disabled"), False)
        filters = [(f, first(params, f)) for f in ("business_name", "firstname", "lastname", "email")
                   if first(params, f)]
        query = first(params, "query")
        out = []
        for cid in self.customer_index.ids():
            c = self.customers[cid]
            if c["disabled"] and not include_disabled:
                continue
            if want_ids and cid not in want_ids:
                continue
            if cid in not_ids:
                continue
            if any(not like(c.get(f), v) for f, v in filters):
                continue
            # GUESS: query searches business name, names, e-mail and phone.
            if query and not any(like(c.get(f), query) for f in
                                 ("business_name", "fullname", "firstname", "lastname", "email", "phone")):
                continue
            out.append(c)
        sort = first(params, "sort")
        if sort:
            parts = sort.split()
            field = parts[0]
            desc = len(parts) > 1 and parts[1].upper() == "DESC"
            if out and field in out[0]:
                out.sort(key=lambda r: (r.get(field) is None, str(r.get(field)).lower()
                                        if r.get(field) is not None else ""), reverse=desc)
        page = page_param(params)
        per = self.page_size["customers"]
        rows, pages, total = paginate(out, page, per)
        return 200, {"customers": [self.customer_json(c) for c in rows],
                     "meta": {"total_pages": pages, "total_entries": total, "per_page": per, "page": page}}

    def op_customers_create(self, params, body):
        return 200, {"customer": self.customer_json(self.add_customer(body))}

    def op_customers_get(self, params, body, cid):
        return 200, {"customer": self.customer_json(self._customer(cid), detail=True)}

    def op_customers_update(self, params, body, cid):
        c = self._customer(cid)
        trial = dict(c)
        trial["_extra"] = dict(c["_extra"])
        self._customer_assign(trial, body)
        errs = self._customer_errors(trial)
        if errs:
            raise ApiError(422, {"success": False, "message": errs})
        trial["updated_at"] = iso_now()
        c.update(trial)
        return 200, {"customer": self.customer_json(c)}

    def op_customers_delete(self, params, body, cid):
        c = self._customer(cid)
        # GUESS: a hard-deleted customer takes its contacts with it.
        for i in list(self.contacts_by_customer.get(c["id"], IdIndex()).ids()):
            self._drop_contact(i)
        self.contacts_by_customer.pop(c["id"], None)
        del self.customers[c["id"]]
        self.customer_index.discard(c["id"])
        return 200, {"message": "Customer was deleted from the system."}

    def op_customers_latest(self, params, body):
        ids = self.customer_index.ids()
        if not ids:
            raise ApiError(404, NOT_FOUND)
        return 200, {"customer": self.customer_json(self.customers[ids[-1]])}

    def op_customers_autocomplete(self, params, body):
        q = first(params, "query") or ""
        out = [self.customers[i] for i in self.customer_index.ids()
               if not self.customers[i]["disabled"]
               and (like(self.customers[i]["business_name"], q) or like(self.customers[i]["fullname"], q))]
        # GUESS: autocomplete caps its answer at 25 entries and has no meta (spec example).
        return 200, {"customers": [self.customer_json(c) for c in out[:25]]}

    # ------------------------------------------------------------ contacts
    @staticmethod
    def _contact_blank():
        return {"id": None, "name": None, "address1": None, "address2": None, "city": None,
                "state": None, "zip": None, "email": None, "phone": None, "mobile": None,
                "latitude": None, "longitude": None, "customer_id": None, "account_id": ACCOUNT_ID,
                "notes": None, "created_at": None, "updated_at": None, "vendor_id": None,
                "properties": {}, "opt_out": False, "extension": None}

    @staticmethod
    def _contact_assign(rec, body):
        for f in CONTACT_FIELDS:
            if f in body:
                rec[f] = to_str(body[f])
        if "opt_out" in body:
            rec["opt_out"] = to_bool(body["opt_out"])
        if "properties" in body and isinstance(body["properties"], dict):
            # GUESS: a properties hash replaces the stored one (Rails attribute assignment).
            rec["properties"] = dict(body["properties"])
        if "title" in body:
            # Observed live: title is stored as properties.title, never top-level.
            props = dict(rec["properties"])
            props["title"] = to_str(body["title"])
            rec["properties"] = props

    @staticmethod
    def _contact_errors(rec):
        errs = []
        if blank(rec["name"]):
            errs.append("Name can't be blank")   # GUESS: name is required
        if rec["customer_id"] is None:
            errs.append("Customer can't be blank")
        if rec["email"] and not EMAIL_RE.match(rec["email"]):
            errs.append("Email is not an email")
        return ", ".join(errs)

    def add_contact(self, body, validate=True):
        """Creates a contact (POST /contacts semantics; seeding skips validation, allows id)."""
        cid = to_int(body.get("customer_id"))
        if cid is None or cid not in self.customers:
            raise ApiError(404, NOT_FOUND)
        rec = self._contact_blank()
        rec["customer_id"] = cid
        self._contact_assign(rec, body)
        if validate:
            errs = self._contact_errors(rec)
            if errs:
                rec["processed_phone"] = None
                rec["processed_mobile"] = None
                raise ApiError(422, {"record": rec, "errors": errs})
        rec["id"] = self._new_id("contact", None if validate else body.get("id"))
        now = iso_now()
        rec["created_at"] = now if validate or not body.get("created_at") else body["created_at"]
        rec["updated_at"] = now if validate or not body.get("updated_at") else body["updated_at"]
        if not validate:
            for f in ("vendor_id", "latitude", "longitude"):
                if f in body:
                    rec[f] = body[f]
        self.contacts[rec["id"]] = rec
        self.contact_index.add(rec["id"])
        self.contacts_by_customer.setdefault(cid, IdIndex()).add(rec["id"])
        return rec

    def _drop_contact(self, i):
        rec = self.contacts.pop(i)
        self.contact_index.discard(i)
        idx = self.contacts_by_customer.get(rec["customer_id"])
        if idx is not None:
            idx.discard(i)

    def _contact(self, i):
        rec = self.contacts.get(to_int(i))
        if rec is None:
            raise ApiError(404, NOT_FOUND)
        return rec

    def op_contacts_list(self, params, body):
        # Only customer_id and page are documented filters; anything else is ignored (Rails).
        cid_raw = first(params, "customer_id")
        if cid_raw not in (None, ""):
            idx = self.contacts_by_customer.get(to_int(cid_raw))
            ids = idx.ids() if idx else []
        else:
            ids = self.contact_index.ids()
        page = page_param(params)
        per = self.page_size["contacts"]
        rows, pages, total = paginate(ids, page, per)
        return 200, {"contacts": [self.contacts[i] for i in rows],
                     "meta": {"total_pages": pages, "total_entries": total, "per_page": per, "page": page}}

    def op_contacts_create(self, params, body):
        return 200, self.add_contact(body)

    def op_contacts_get(self, params, body, i):
        return 200, self._contact(i)     # flat, no wrapper (spec)

    def op_contacts_update(self, params, body, i):
        rec = self._contact(i)
        trial = dict(rec)
        if "customer_id" in body:
            new_cid = to_int(body["customer_id"])
            if body["customer_id"] not in (None, "") and (new_cid is None or new_cid not in self.customers):
                raise ApiError(404, NOT_FOUND)   # GUESS: unknown customer -> 404 like create
            trial["customer_id"] = new_cid
        self._contact_assign(trial, body)
        errs = self._contact_errors(trial)
        if errs:
            raise ApiError(422, {"record": trial, "errors": errs})
        trial["updated_at"] = iso_now()
        if trial["customer_id"] != rec["customer_id"]:
            self.contacts_by_customer[rec["customer_id"]].discard(rec["id"])
            self.contacts_by_customer.setdefault(trial["customer_id"], IdIndex()).add(rec["id"])
        rec.update(trial)
        return 200, rec

    def op_contacts_delete(self, params, body, i):
        rec = self._contact(i)
        self._drop_contact(rec["id"])
        return 200, {"success": True}    # observed live

    # ------------------------------------------------------------ products
    @staticmethod
    def _product_blank():
        return {"id": None, "price_cost": 0.0, "price_retail": 0.0, "condition": None,
                "description": None, "maintain_stock": False, "name": None, "quantity": 0,
                "warranty": None, "sort_order": None, "reorder_at": None, "disabled": False,
                "taxable": True, "product_category": None, "category_path": None, "upc_code": None,
                "discount_percent": None, "warranty_template_id": None, "qb_item_id": None,
                "desired_stock_level": None, "price_wholesale": 0, "notes": None, "tax_rate_id": None,
                "physical_location": None, "serialized": False, "vendor_ids": [], "product_skus": [],
                "long_description": None, "location_quantities": [], "photos": []}

    @staticmethod
    def _product_assign(p, body, is_update):
        for f in ("condition", "description", "name", "warranty", "product_category", "upc_code",
                  "notes", "physical_location", "long_description"):
            if f in body:
                p[f] = to_str(body[f])
        for f in ("price_cost", "price_retail", "price_wholesale", "discount_percent"):
            if f in body:
                p[f] = float(to_dec(body[f]))
        for f in ("quantity", "sort_order", "reorder_at", "warranty_template_id", "qb_item_id",
                  "desired_stock_level", "tax_rate_id"):
            if f in body:
                p[f] = to_int(body[f])
        for f in ("disabled", "taxable", "serialized"):
            if f in body:
                p[f] = to_bool(body[f])
        # Observed live: a PUT that omits maintain_stock resets it to false.
        if "maintain_stock" in body or is_update:
            p["maintain_stock"] = to_bool(body.get("maintain_stock"), False)
        if isinstance(body.get("vendor_ids"), list):
            p["vendor_ids"] = [to_int(v) for v in body["vendor_ids"] if to_int(v) is not None]

    def add_product(self, body, validate=True):
        p = self._product_blank()
        self._product_assign(p, body, False)
        errs = [m for f, m in (("name", "Name can't be blank"), ("description", "Description can't be blank"))
                if blank(p[f])]
        if validate and errs:
            raise ApiError(422, {"success": False, "message": errs, "params": dict(body)})
        p["id"] = self._new_id("product", None if validate else body.get("id"))
        self.products[p["id"]] = p
        self.product_index.add(p["id"])
        return p

    def _product(self, i):
        p = self.products.get(to_int(i))
        if p is None:
            raise ApiError(404, NOT_FOUND)
        return p

    def op_products_list(self, params, body):
        name, sku, upc, query = (first(params, k) for k in ("name", "sku", "upc_code", "query"))
        ids, not_ids = id_list(params, "id"), id_list(params, "id_not")
        out = []
        for i in self.product_index.ids():
            p = self.products[i]
            if (ids and i not in ids) or i in not_ids:
                continue
            if name and not like(p["name"], name):
                continue
            if upc and p["upc_code"] != upc:
                continue
            if sku and not any(s.get("sku") == sku for s in p["product_skus"]):
                continue
            if query and not (like(p["name"], query) or like(p["description"], query)
                              or like(p["upc_code"], query)):
                continue
            out.append(p)
        rows, _, _ = paginate(out, page_param(params), self.page_size["products"])
        return 200, {"products": rows}   # spec example has no meta

    def op_products_create(self, params, body):
        return 200, {"product": self.add_product(body)}

    def op_products_get(self, params, body, i):
        return 200, {"product": self._product(i)}

    def op_products_update(self, params, body, i):
        p = self._product(i)
        trial = dict(p)
        self._product_assign(trial, body, True)
        if blank(trial["name"]):
            raise ApiError(422, {"success": False, "message": ["Name can't be blank"]})
        p.update(trial)
        return 200, {"product": p}

    # ------------------------------------------------------------ tickets
    def _ticket_customer_name(self, t):
        c = self.customers.get(t["customer_id"])
        return c["business_then_name"] if c else None

    def _comment_json(self, cm, listing=False):
        out = {k: cm[k] for k in ("id", "created_at", "updated_at", "ticket_id", "subject", "body",
                                  "tech", "hidden", "user_id")}
        if listing:
            out["is_rich_text"] = False
            out["user"] = {}
        return out

    def ticket_list_json(self, t, all_comments):
        cids = self.comments_by_ticket.get(t["id"], [])
        if not all_comments:
            cids = cids[:1]
        contact = self.contacts.get(t["contact_id"]) if t["contact_id"] else None
        return {"id": t["id"], "number": t["number"], "subject": t["subject"],
                "created_at": t["created_at"], "customer_id": t["customer_id"],
                "customer_business_then_name": self._ticket_customer_name(t),
                "due_date": t["due_date"], "resolved_at": t["resolved_at"], "start_at": t["start_at"],
                "end_at": t["end_at"], "location_id": t["location_id"], "location_name": None,
                "problem_type": t["problem_type"], "status": t["status"],
                "ticket_type_id": t["ticket_type_id"], "ticket_type_name": None,
                "properties": t["properties"], "user_id": t["user_id"], "updated_at": t["updated_at"],
                "pdf_url": None, "priority": t["priority"], "billing_status": None,
                "tag_list": t["tag_list"], "sla_name": None, "creator_name_or_email": None,
                "contact_fullname": contact["name"] if contact else None, "contract_name": None,
                "address_id": None, "parent": False, "parent_id": None, "child": False,
                "recurring": False, "customer_reply": False, "total_formatted_billable_time": None,
                "contact_id": t["contact_id"], "sla_breached": False, "sla_breaching_soon": False,
                "contract_id": None, "sla_id": t["sla_id"], "customer_tag_list": [],
                "resolution_time": None, "response_time": None, "customer_icons": [],
                "comments": [self._comment_json(self.comments[c]) for c in cids], "user": None}

    def ticket_json(self, t):
        c = self.customers.get(t["customer_id"])
        return {"id": t["id"], "number": t["number"], "subject": t["subject"],
                "created_at": t["created_at"], "customer_id": t["customer_id"],
                "customer_business_then_name": self._ticket_customer_name(t),
                "due_date": t["due_date"], "start_at": t["start_at"], "end_at": t["end_at"],
                "location_id": t["location_id"], "problem_type": t["problem_type"],
                "status": t["status"], "properties": t["properties"], "user_id": t["user_id"],
                "updated_at": t["updated_at"], "pdf_url": None, "intake_form_html": None,
                "signature_name": t["signature_name"], "signature_date": None,
                "asset_ids": t["asset_ids"], "priority": t["priority"], "resolved_at": t["resolved_at"],
                "outtake_form_name": None, "outtake_form_date": None, "outtake_form_html": None,
                "comments": [self._comment_json(self.comments[i])
                             for i in self.comments_by_ticket.get(t["id"], [])],
                "attachments": [], "ticket_timers": [], "line_items": [], "worksheet_results": [],
                "assets": [], "appointments": [], "ticket_fields": [], "ticket_answers": [],
                "tag_list": t["tag_list"],
                "customer": self.customer_json(c) if c else None,
                "contact": self.contacts.get(t["contact_id"]) if t["contact_id"] else None,
                "user": None, "ticket_type": None, "address": None}

    @staticmethod
    def _ticket_assign(t, body):
        for f in ("subject", "problem_type", "status", "priority", "signature_name", "number"):
            if f in body:
                t[f] = to_str(body[f])
        for f in ("ticket_type_id", "location_id", "user_id", "sla_id", "contact_id"):
            if f in body:
                t[f] = to_int(body[f])
        for f in ("due_date", "start_at", "end_at"):
            if f in body:
                t[f] = norm_time(body[f])
        if isinstance(body.get("properties"), dict):
            t["properties"] = dict(body["properties"])
        if isinstance(body.get("tag_list"), list):
            t["tag_list"] = [to_str(x) for x in body["tag_list"]]
        if isinstance(body.get("asset_ids"), list):
            t["asset_ids"] = [to_int(x) for x in body["asset_ids"] if to_int(x) is not None]

    def _add_comment(self, ticket, body, when=None):
        now = when or iso_now()
        cm = {"id": self._new_id("comment"), "created_at": now, "updated_at": now,
              "ticket_id": ticket["id"], "subject": to_str(body.get("subject")),
              "body": to_str(body.get("body")), "tech": to_str(body.get("tech")),
              "hidden": to_bool(body.get("hidden"), False), "user_id": to_int(body.get("user_id"))}
        self.comments[cm["id"]] = cm
        self.comments_by_ticket.setdefault(ticket["id"], []).append(cm["id"])
        return cm

    def add_ticket(self, body, validate=True):
        cid = to_int(body.get("customer_id"))
        if cid is None or cid not in self.customers:
            raise ApiError(422, {"error": "Customer required field"})
        now = iso_now()
        t = {"id": None, "number": None, "subject": None, "customer_id": cid, "due_date": None,
             "start_at": None, "end_at": None, "location_id": None, "problem_type": None,
             "status": "New", "ticket_type_id": None, "properties": {}, "user_id": None,
             "priority": None, "tag_list": [], "contact_id": None, "sla_id": None,
             "signature_name": None, "asset_ids": [], "resolved_at": None,
             "created_at": now, "updated_at": now}
        self._ticket_assign(t, body)
        if validate and blank(t["subject"]):
            raise ApiError(422, {"success": False, "message": ["Subject can't be blank"]})  # GUESS
        if t["number"] is None:
            t["number"] = self._new_id("ticket_number")
        else:
            n = to_int(t["number"])
            t["number"] = n if n is not None else t["number"]
        t["id"] = self._new_id("ticket", None if validate else body.get("id"))
        if not validate:
            for f in ("created_at", "updated_at", "resolved_at"):
                if body.get(f):
                    t[f] = body[f]
        if t["status"] == "Resolved" and not t["resolved_at"]:
            t["resolved_at"] = now
        self.tickets[t["id"]] = t
        self.ticket_index.add(t["id"])
        # line_items in the create body are ignored (observed live); comments_attributes are used.
        for cm in body.get("comments_attributes") or []:
            if isinstance(cm, dict):
                self._add_comment(t, cm)
        for cm in (body.get("comments") or []) if not validate else []:
            if isinstance(cm, dict):
                self._add_comment(t, cm, cm.get("created_at"))
        return t

    def _ticket(self, i):
        t = self.tickets.get(to_int(i))
        if t is None:
            raise ApiError(404, NOT_FOUND)
        return t

    def op_tickets_list(self, params, body):
        cid, contact_id, user_id = (to_int(first(params, k)) for k in ("customer_id", "contact_id", "user_id"))
        number, status, query = (first(params, k) for k in ("number", "status", "query"))
        created_after = parse_time(first(params, "created_after"))
        updated_after = parse_time(first(params, "since_updated_at"))
        resolved_after = parse_time(first(params, "resolved_after"))
        out = []
        for i in self.ticket_index.ids():
            t = self.tickets[i]
            if cid is not None and t["customer_id"] != cid:
                continue
            if contact_id is not None and t["contact_id"] != contact_id:
                continue
            if user_id is not None and t["user_id"] != user_id:
                continue
            if number and str(t["number"]) != number:
                continue
            if status:
                # GUESS: "Not Closed" means anything but Resolved; other values match exactly.
                if status == "Not Closed":
                    if t["status"] == "Resolved":
                        continue
                elif t["status"] != status:
                    continue
            # GUESS: query searches subject, number, problem type and customer name.
            if query and not (like(t["subject"], query) or like(t["number"], query)
                              or like(t["problem_type"], query)
                              or like(self._ticket_customer_name(t), query)):
                continue
            if created_after and parse_time(t["created_at"]) <= created_after:
                continue
            if updated_after and parse_time(t["updated_at"]) <= updated_after:
                continue
            if resolved_after and (not t["resolved_at"] or parse_time(t["resolved_at"]) <= resolved_after):
                continue
            out.append(t)
        page = page_param(params)
        rows, pages, _ = paginate(out, page, self.page_size["tickets"])
        # all_comments defaults to false since 2026-03-11 (spec): only the first comment.
        all_comments = to_bool(first(params, "all_comments"), False)
        return 200, {"tickets": [self.ticket_list_json(t, all_comments) for t in rows],
                     "meta": {"total_pages": pages, "page": page}}

    def op_tickets_create(self, params, body):
        return 200, {"ticket": self.ticket_json(self.add_ticket(body))}

    def op_tickets_get(self, params, body, i):
        return 200, {"ticket": self.ticket_json(self._ticket(i))}

    def op_tickets_update(self, params, body, i):
        t = self._ticket(i)
        trial = dict(t)
        if "customer_id" in body:
            cid = to_int(body["customer_id"])
            if cid is None or cid not in self.customers:
                raise ApiError(422, {"error": "Customer required field"})
            trial["customer_id"] = cid
        self._ticket_assign(trial, body)
        if blank(trial["subject"]):
            raise ApiError(422, {"success": False, "message": ["Subject can't be blank"]})
        now = iso_now()
        if trial["status"] == "Resolved" and t["status"] != "Resolved":
            trial["resolved_at"] = now
        elif trial["status"] != "Resolved":
            trial["resolved_at"] = None
        trial["updated_at"] = now
        t.update(trial)
        return 200, {"ticket": self.ticket_json(t)}

    def op_tickets_delete(self, params, body, i):
        t = self._ticket(i)
        for cm in self.comments_by_ticket.pop(t["id"], []):
            self.comments.pop(cm, None)
        del self.tickets[t["id"]]
        self.ticket_index.discard(t["id"])
        return 200, {"message": "Ticket was successfully deleted. "}

    def op_tickets_settings(self, params, body):
        return 200, {"ticket_status_list": list(TICKET_STATUSES), "default_labor_product_id": None,
                     "ticket_timer_charge_by_default": None, "saved_searches": [], "ticket_types": [],
                     "ticket_type_fields": [], "ticket_type_field_answers": [], "appointment_types": [],
                     "users": [{"id": 1, "name": "Fake Tech"}], "dashboard_settings": None,
                     "worksheet_templates": [], "require_ticket_type": None,
                     "require_intake_form_with_ticket": None, "require_outtake_form_with_ticket": None,
                     "ticket_workflow_default_id": None}

    def op_tickets_comment(self, params, body, i):
        t = self._ticket(i)
        errs = [m for f, m in (("body", "Body can't be blank"), ("subject", "Subject can't be blank"))
                if blank(body.get(f))]
        if errs:
            raise ApiError(422, {"success": False, "message": errs})
        cm = self._add_comment(t, body)
        t["updated_at"] = cm["created_at"]
        return 200, {"comment": self._comment_json(cm)}

    def op_tickets_comments(self, params, body, i):
        t = self._ticket(i)
        rows = [self.comments[c] for c in self.comments_by_ticket.get(t["id"], [])]
        for name, field in (("created_after", "created_at"), ("updated_after", "updated_at")):
            lim = parse_time(first(params, name))
            if lim:
                rows = [r for r in rows if parse_time(r[field]) > lim]
        for name, field in (("created_before", "created_at"), ("updated_before", "updated_at")):
            lim = parse_time(first(params, name))
            if lim:
                rows = [r for r in rows if parse_time(r[field]) < lim]
        key = first(params, "sort_by") if first(params, "sort_by") in ("created_at", "updated_at") else "created_at"
        # Live: comments come newest first by default.
        desc = (first(params, "sort_direction") or "DESC").upper() != "ASC"
        rows.sort(key=lambda r: (r[key], r["id"]), reverse=desc)
        per = to_int(first(params, "per_page")) or self.page_size["comments"]
        per = max(1, per)
        page = page_param(params)
        rows, pages, _ = paginate(rows, page, per)
        return 200, {"comments": [self._comment_json(r, listing=True) for r in rows],
                     "meta": {"total_pages": pages, "page": page, "per_page": per}}

    # ------------------------------------------------------------ invoices
    def _line_totals(self, inv_id):
        sub = Decimal(0)
        for li in self.items_by_invoice.get(inv_id, []):
            row = self.line_items[li]
            price, qty = to_dec(row["price"]), to_dec(row["quantity"])
            disc = to_dec(row["discount_percent"])
            sub += price * qty * (Decimal(100) - disc) / Decimal(100) - to_dec(row["discount_dollars"])
        return sub.quantize(Decimal("0.01"))

    def _recalc(self, inv):
        sub = self._line_totals(inv["id"])
        inv["subtotal"] = money(sub)
        inv["tax"] = money(0)          # GUESS: no tax rates in the fake
        inv["total"] = money(sub)
        inv["updated_at"] = iso_now()

    def invoice_json(self, inv, detail=False):
        out = dict(inv)
        c = self.customers.get(inv["customer_id"])
        out["customer_business_then_name"] = c["business_then_name"] if c else None
        if detail:
            out["customer"] = self.customer_json(c) if c else None
            out["line_items"] = [self.line_items[i] for i in self.items_by_invoice.get(inv["id"], [])]
            out["payments"] = []
        return out

    def _invoice_assign(self, inv, body):
        for f in ("number", "po_number", "note"):
            if f in body:
                inv[f] = to_str(body[f])
        for f in ("date", "due_date"):
            if f in body:
                inv[f] = norm_time(body[f])
        for f in ("ticket_id", "location_id", "contact_id"):
            if f in body:
                inv[f] = to_int(body[f])
        if "hardwarecost" in body:
            inv["hardwarecost"] = None if body["hardwarecost"] is None else money(to_dec(body["hardwarecost"]))

    def add_invoice(self, body, validate=True):
        cid = to_int(body.get("customer_id"))
        if cid is None:
            raise ApiError(422, {"success": False, "message": ["Customer can't be blank"]})  # GUESS
        if cid not in self.customers:
            raise ApiError(404, NOT_FOUND)
        now = iso_now()
        inv = {"id": None, "customer_id": cid, "customer_business_then_name": None, "number": None,
               "created_at": now, "updated_at": now, "date": None, "due_date": None,
               "subtotal": "0.0", "total": "0.0", "tax": "0.0", "verified_paid": False,
               "tech_marked_paid": False, "ticket_id": None, "pdf_url": None, "is_paid": False,
               "location_id": None, "po_number": None, "contact_id": None, "note": None,
               "hardwarecost": None, "user_id": 1}
        self._invoice_assign(inv, body)
        # GUESS: number/date are required in the spec, but live Syncro numbers invoices itself.
        if blank(inv["number"]):
            taken = {str(v["number"]) for v in self.invoices.values()}
            n = self._new_id("invoice_number")
            while str(n) in taken:   # past the numbers of seeded or given invoices: unique, as Syncro's are
                n = self._new_id("invoice_number")
            inv["number"] = str(n)
        if inv["date"] is None:
            inv["date"] = now[:10] + "T00:00:00.000Z"
        if inv["due_date"] is None:
            inv["due_date"] = inv["date"]
        if not validate and "is_paid" in body:
            inv["is_paid"] = inv["verified_paid"] = to_bool(body["is_paid"])
        inv["id"] = self._new_id("invoice", None if validate else body.get("id"))
        self.invoices[inv["id"]] = inv
        self.invoice_index.add(inv["id"])
        self.items_by_invoice[inv["id"]] = []
        # Observed live: line_items sent with the invoice itself are silently dropped.
        return inv

    def _invoice(self, key):
        inv = self.invoices.get(to_int(key))
        if inv is None:   # "ID or Number of Invoice to retrieve"
            inv = next((v for v in self.invoices.values() if v["number"] == str(key)), None)
        if inv is None:
            raise ApiError(404, NOT_FOUND)
        return inv

    def op_invoices_list(self, params, body):
        paid = to_bool(first(params, "paid"), False)
        unpaid = to_bool(first(params, "unpaid"), False)
        ticket_id = to_int(first(params, "ticket_id"))
        since = parse_time(first(params, "since_updated_at"))
        out = []
        for i in self.invoice_index.ids():
            inv = self.invoices[i]
            if paid and not inv["is_paid"]:
                continue
            if unpaid and inv["is_paid"]:
                continue
            if ticket_id is not None and inv["ticket_id"] != ticket_id:
                continue
            if since and parse_time(inv["updated_at"]) <= since:
                continue
            out.append(inv)
        page = page_param(params)
        rows, pages, _ = paginate(out, page, self.page_size["invoices"])
        return 200, {"invoices": [self.invoice_json(v) for v in rows],
                     "meta": {"total_pages": pages, "page": page}}

    def op_invoices_create(self, params, body):
        return 200, {"invoice": self.invoice_json(self.add_invoice(body))}

    def op_invoices_get(self, params, body, key):
        # GUESS: wrapped like create/update (the spec gives only a schema for this response).
        return 200, {"invoice": self.invoice_json(self._invoice(key), detail=True)}

    def op_invoices_update(self, params, body, key):
        inv = self._invoice(key)
        if "customer_id" in body:
            cid = to_int(body["customer_id"])
            if cid is None or cid not in self.customers:
                raise ApiError(404, NOT_FOUND)
            inv["customer_id"] = cid
        self._invoice_assign(inv, body)   # line_items ignored here too
        inv["updated_at"] = iso_now()
        return 200, {"invoice": self.invoice_json(inv)}

    def op_invoices_delete(self, params, body, key):
        # Spec: "Returns 200 even if the delete fails". GUESS: message text.
        try:
            inv = self._invoice(key)
        except ApiError:
            return 200, {"message": "Invoice not deleted."}
        for li in self.items_by_invoice.pop(inv["id"], []):
            self.line_items.pop(li, None)
        del self.invoices[inv["id"]]
        self.invoice_index.discard(inv["id"])
        return 200, {"message": "Invoice %s was deleted." % inv["number"]}

    def op_invoices_ticket(self, params, body, key):
        inv = self._invoice(key)
        if inv["ticket_id"] is None or inv["ticket_id"] not in self.tickets:
            raise ApiError(404, NOT_FOUND)
        return 200, {"ticket": self.ticket_json(self.tickets[inv["ticket_id"]])}

    def _line_item_assign(self, li, body):
        for f in ("item", "name", "upc_code", "tax_note", "product_category"):
            if f in body:
                li[f] = to_str(body[f])
        for f in ("cost", "price", "quantity", "discount_dollars"):
            if f in body:
                li[f] = money(to_dec(body[f]))
        for f in ("discount_percent", "line_discount_percent"):
            if f in body:
                li["discount_percent"] = money(to_dec(body[f]))
        for f in ("taxable",):
            if f in body:
                li[f] = to_bool(body[f])
        for f in ("user_id", "position", "tax_rate_id", "invoice_bundle_id"):
            if f in body:
                li[f] = to_int(body[f])

    def add_line_item(self, inv, body):
        now = iso_now()
        li = {"id": None, "created_at": now, "updated_at": now, "invoice_id": inv["id"],
              "item": None, "name": None, "cost": "0.0", "price": "0.0", "quantity": "1.0",
              "product_id": None, "taxable": False, "discount_percent": "0.0", "position": None,
              "invoice_bundle_id": None, "discount_dollars": "0.0", "product_category": None,
              "tax_note": None, "upc_code": None, "user_id": None, "tax_rate_id": None}
        pid = to_int(body.get("product_id"))
        if body.get("product_id") not in (None, ""):
            p = self.products.get(pid)
            if p is None:
                raise ApiError(404, NOT_FOUND)   # GUESS
            # Observed live: product_id + quantity fills item, name, cost, price, taxable, category.
            li.update({"product_id": pid, "item": p["name"], "name": p["description"],
                       "cost": money(to_dec(p["price_cost"])), "price": money(to_dec(p["price_retail"])),
                       "taxable": p["taxable"], "product_category": p["product_category"],
                       "upc_code": p["upc_code"]})
        self._line_item_assign(li, body)   # GUESS: explicit fields win over the catalog
        if blank(li["item"]) and blank(li["name"]):
            raise ApiError(422, {"success": False, "message": ["Item can't be blank"]})  # GUESS
        li["id"] = self._new_id("line_item")
        if li["position"] is None:
            li["position"] = len(self.items_by_invoice[inv["id"]]) + 1
        self.line_items[li["id"]] = li
        self.items_by_invoice[inv["id"]].append(li["id"])
        self._recalc(inv)
        return li

    def op_invoices_add_line_item(self, params, body, key):
        inv = self._invoice(key)
        return 200, self.add_line_item(inv, body)   # GUESS: the new line item, flat

    def _line_item(self, inv, li_id):
        li = self.line_items.get(to_int(li_id))
        if li is None or li["invoice_id"] != inv["id"]:
            raise ApiError(404, NOT_FOUND)
        return li

    def op_invoices_update_line_item(self, params, body, key, li_id):
        inv = self._invoice(key)
        li = self._line_item(inv, li_id)
        self._line_item_assign(li, body)
        li["updated_at"] = iso_now()
        self._recalc(inv)
        return 200, li   # GUESS: the line item, flat

    def op_invoices_delete_line_item(self, params, body, key, li_id):
        inv = self._invoice(key)
        li = self._line_item(inv, li_id)
        self.items_by_invoice[inv["id"]].remove(li["id"])
        del self.line_items[li["id"]]
        self._recalc(inv)
        # Observed live: returns the recalculated invoice. GUESS: wrapped.
        return 200, {"invoice": self.invoice_json(inv, detail=True)}

    # ------------------------------------------------------------ schedules
    def schedule_json(self, s):
        out = dict(s)
        lines = [self.schedule_lines[i] for i in self.lines_by_schedule.get(s["id"], [])]
        cents = sum(to_dec(line["retail_cents"]) * to_dec(line["quantity"]) for line in lines)
        sub = cents / Decimal(100)
        out["subtotal"] = int(sub) if sub == sub.to_integral_value() else float(sub)
        out["lines"] = lines
        return out

    def _schedule_assign(self, s, body):
        if "customer_id" in body:
            s["customer_id"] = to_int(body["customer_id"])
        for f in ("name", "frequency"):
            if f in body:
                s[f] = to_str(body[f])
        if "next_run" in body:
            s["next_run"] = norm_time(body["next_run"])
        for f in ("email_customer", "snail_mail", "charge_mop", "invoice_unbilled_ticket_charges", "paused"):
            if f in body:
                s[f] = to_bool(body[f])

    def _schedule_errors(self, s):
        errs = []
        if s["frequency"] not in FREQUENCIES:
            errs.append("Frequency Must be a valid selection")
        if blank(s["frequency"]):
            errs.append("Frequency can't be blank")
        if s["next_run"] is None:
            errs.append("Next run can't be blank")
        if blank(s["name"]):
            errs.append("Name can't be blank")
        if s["customer_id"] is None or s["customer_id"] not in self.customers:
            errs.append("Customer can't be blank")
        return errs

    def add_schedule(self, body, validate=True):
        s = {"id": None, "account_id": ACCOUNT_ID, "customer_id": None, "email_customer": False,
             "frequency": None, "name": None, "next_run": None, "snail_mail": False,
             "charge_mop": False, "subtotal": 0, "invoice_unbilled_ticket_charges": False,
             "paused": False, "last_invoice_paid": None}
        self._schedule_assign(s, body)
        errs = self._schedule_errors(s)
        if errs and (validate or s["customer_id"] not in self.customers):
            raise ApiError(422, {"error": errs})
        s["id"] = self._new_id("schedule", None if validate else body.get("id"))
        self.schedules[s["id"]] = s
        self.schedule_index.add(s["id"])
        self.lines_by_schedule[s["id"]] = []
        if not validate:
            for line in body.get("lines") or []:
                self.add_schedule_line(s, line)
        return s

    def _schedule(self, i):
        s = self.schedules.get(to_int(i))
        if s is None:
            raise ApiError(404, NOT_FOUND)
        return s

    def op_schedules_list(self, params, body):
        cid = to_int(first(params, "customer_id"))
        out = [self.schedules[i] for i in self.schedule_index.ids()
               if cid is None or self.schedules[i]["customer_id"] == cid]
        rows, _, _ = paginate(out, page_param(params), self.page_size["schedules"])
        return 200, {"schedules": [self.schedule_json(s) for s in rows]}   # spec example has no meta

    def op_schedules_create(self, params, body):
        return 200, {"schedule": self.schedule_json(self.add_schedule(body))}

    def op_schedules_get(self, params, body, i):
        return 200, {"schedule": self.schedule_json(self._schedule(i))}

    def op_schedules_update(self, params, body, i):
        s = self._schedule(i)
        trial = dict(s)
        self._schedule_assign(trial, body)
        errs = self._schedule_errors(trial)
        if errs:
            raise ApiError(422, {"error": errs})
        s.update(trial)
        return 200, {"schedule": self.schedule_json(s)}

    def op_schedules_delete(self, params, body, i):
        s = self._schedule(i)
        for li in self.lines_by_schedule.pop(s["id"], []):
            self.schedule_lines.pop(li, None)
        del self.schedules[s["id"]]
        self.schedule_index.discard(s["id"])
        return 200, {"message": "Schedule was deleted."}   # GUESS: no body documented

    def _schedule_line_assign(self, li, body):
        for f in ("name", "description", "product_category"):
            if f in body:
                li[f] = to_str(body[f])
        for f in ("retail_cents", "cost_cents"):
            if f in body:
                li[f] = int(to_dec(body[f]).to_integral_value())
        # billing.md: dollars (price_retail/price_cost) are accepted as an alternative to cents.
        for f, cents in (("price_retail", "retail_cents"), ("price_cost", "cost_cents")):
            if f in body and cents not in body:
                li[cents] = int((to_dec(body[f]) * 100).to_integral_value())
        if "quantity" in body:
            li["quantity"] = money(to_dec(body["quantity"]))
        for f in ("position", "user_id", "asset_type_id", "recurring_type_id"):
            if f in body:
                li[f] = to_int(body[f])
        for f in ("taxable", "one_time_charge"):
            if f in body:
                li[f] = to_bool(body[f])
        li["price_retail"] = float(Decimal(li["retail_cents"] or 0) / 100)
        li["price_cost"] = float(Decimal(li["cost_cents"] or 0) / 100)

    def add_schedule_line(self, s, body):
        li = {"id": None, "cost_cents": 0, "description": None, "name": None, "position": None,
              "product_id": None, "quantity": "0.0", "retail_cents": 0, "schedule_id": s["id"],
              "taxable": False, "user_id": 1, "price_cost": 0, "price_retail": 0,
              "product_category": None, "asset_type_id": None, "recurring_type_id": None,
              "device_ids": [], "one_time_charge": False}
        if body.get("product_id") not in (None, ""):
            p = self.products.get(to_int(body.get("product_id")))
            if p is None:
                raise ApiError(404, NOT_FOUND)   # GUESS
            # billing.md: name, description and category default from the product. GUESS: prices too.
            li.update({"product_id": p["id"], "name": p["name"], "description": p["description"],
                       "product_category": p["product_category"], "taxable": p["taxable"],
                       "retail_cents": int((to_dec(p["price_retail"]) * 100).to_integral_value()),
                       "cost_cents": int((to_dec(p["price_cost"]) * 100).to_integral_value())})
        self._schedule_line_assign(li, body)
        if blank(li["name"]):
            raise ApiError(422, {"error": ["Name can't be blank"]})
        li["id"] = self._new_id("schedule_line_item")
        if li["position"] is None:
            li["position"] = len(self.lines_by_schedule[s["id"]])
        self.schedule_lines[li["id"]] = li
        self.lines_by_schedule[s["id"]].append(li["id"])
        return li

    def op_schedules_add_line_item(self, params, body, i):
        return 200, {"schedule_line_item": self.add_schedule_line(self._schedule(i), body)}

    def op_schedules_update_line_item(self, params, body, i, li_id):
        s = self._schedule(i)
        li = self.schedule_lines.get(to_int(li_id))
        if li is None or li["schedule_id"] != s["id"]:
            raise ApiError(404, NOT_FOUND)
        trial = dict(li)
        if "product_id" in body:
            trial["product_id"] = to_int(body["product_id"])
        self._schedule_line_assign(trial, body)
        if blank(trial["name"]):
            raise ApiError(422, {"error": ["Name can't be blank"]})
        li.update(trial)
        return 200, {"schedule_line_item": li}

    def op_schedules_remove_line_item(self, params, body, i):
        s = self._schedule(i)
        # Spec body schema is a bare integer; third-party clients send {"line_item_id": N}.
        if isinstance(body, dict):
            raw = body.get("line_item_id", body.get("schedule_line_item_id", body.get("id", body.get("_json"))))
        else:
            raw = body
        li = self.schedule_lines.get(to_int(raw))
        if li is None or li["schedule_id"] != s["id"]:
            raise ApiError(404, NOT_FOUND)
        self.lines_by_schedule[s["id"]].remove(li["id"])
        del self.schedule_lines[li["id"]]
        return 200, {"schedule": self.schedule_json(s)}   # GUESS: no body documented

    # ------------------------------------------------------------ misc
    def op_me(self, params, body):
        return 200, {"user_token": "00000000-0000-4000-8000-000000000001", "user_email": "tech@fake.example",
                     "user_name": "Fake Tech", "user_id": 1, "admin": True, "can_use_app": True,
                     "two_factor_required": False, "subdomain": "fake", "default_location": None,
                     "enable_multi_locations": False, "locations_allowed": [],
                     "permissions": {k: {"read": True, "write": True, "delete": True}
                                     for k in ("asset", "customer", "ticket", "invoice", "payment")}}

    # ------------------------------------------------------------ control helpers
    def seed(self, data):
        """Loads {"customers":[...], "contacts":[...], ...} without API validation; returns created."""
        made = {}
        adders = (("products", self.add_product), ("customers", self.add_customer),
                  ("contacts", self.add_contact), ("tickets", self.add_ticket),
                  ("invoices", self._seed_invoice), ("schedules", self.add_schedule))
        for kind, add in adders:
            for rec in data.get(kind) or []:
                if not isinstance(rec, dict):
                    raise ApiError(400, {"error": "%s entries must be objects" % kind})
                made.setdefault(kind, []).append(add(rec, validate=False))
        return made

    def public(self, kind, rec):
        """A seeded record as the API would show it."""
        if kind == "customers":
            return self.customer_json(rec, with_contacts=False)
        if kind == "tickets":
            return self.ticket_json(rec)
        if kind == "invoices":
            return self.invoice_json(rec, detail=True)
        if kind == "schedules":
            return self.schedule_json(rec)
        return rec

    def _seed_invoice(self, rec, validate=False):
        inv = self.add_invoice(rec, validate=False)
        for li in rec.get("line_items") or []:
            self.add_line_item(inv, li)
        return inv

    def generate(self, customers, contacts_per_customer, seed, domain_prefix="customer"):
        """Adds deterministic bulk data (benchmarks): N customers with M contacts each."""
        rng = random.Random(seed)
        firsts = ["Ava", "Ben", "Chloe", "Dan", "Eve", "Finn", "Gia", "Hugo", "Ivy", "Jon", "Kai",
                  "Lena", "Max", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vic"]
        lasts = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore",
                 "Taylor", "Thomas", "White", "Harris", "Martin", "Clark", "Lewis", "Walker", "Young"]
        titles = ["Engineer", "Accountant", "Sales Rep", "Manager", "Analyst", "Designer", None]
        made_customers = made_contacts = 0
        for _ in range(customers):
            n = self.next_id["customer"]
            domain = "%s%d.example" % (domain_prefix, n)
            c = self.add_customer({"business_name": "Generated Customer %d" % n,
                                   "email": "billing@" + domain}, validate=False)
            made_customers += 1
            for k in range(contacts_per_customer):
                fn, ln = rng.choice(firsts), rng.choice(lasts)
                body = {"customer_id": c["id"], "name": "%s %s" % (fn, ln),
                        "email": "%s.%s.%d@%s" % (fn.lower(), ln.lower(), k, domain),
                        "phone": "555-%04d" % rng.randrange(10000)}
                title = rng.choice(titles)
                if title:
                    body["title"] = title
                self.add_contact(body, validate=False)
                made_contacts += 1
        return {"customers": made_customers, "contacts": made_contacts}

    def dump(self, kind=None):
        parts = {
            "customers": lambda: [self.customer_json(self.customers[i], with_contacts=False)
                                  for i in self.customer_index.ids()],
            "contacts": lambda: [self.contacts[i] for i in self.contact_index.ids()],
            "tickets": lambda: [self.ticket_json(self.tickets[i]) for i in self.ticket_index.ids()],
            "invoices": lambda: [self.invoice_json(self.invoices[i], detail=True)
                                 for i in self.invoice_index.ids()],
            "products": lambda: [self.products[i] for i in self.product_index.ids()],
            "schedules": lambda: [self.schedule_json(self.schedules[i]) for i in self.schedule_index.ids()],
            "next_ids": lambda: dict(self.next_id),
        }
        if kind:
            if kind not in parts:
                raise ApiError(400, {"error": "unknown kind %r" % kind})
            return {kind: parts[kind]()}
        return {k: f() for k, f in parts.items()}

    def counts(self):
        return {"customers": len(self.customers), "contacts": len(self.contacts),
                "tickets": len(self.tickets), "comments": len(self.comments),
                "invoices": len(self.invoices), "line_items": len(self.line_items),
                "products": len(self.products), "schedules": len(self.schedules),
                "schedule_line_items": len(self.schedule_lines)}


# Routes under /api/v1: (method, path regex, op, write kind or None). PATCH is routed like PUT.
ROUTES = [
    ("GET", r"/me", "me", None),
    ("GET", r"/customers", "customers_list", None),
    ("POST", r"/customers", "customers_create", "customers.create"),
    ("GET", r"/customers/latest", "customers_latest", None),
    ("GET", r"/customers/autocomplete", "customers_autocomplete", None),
    ("GET", r"/customers/([^/]+)", "customers_get", None),
    ("PUT", r"/customers/([^/]+)", "customers_update", "customers.update"),
    ("DELETE", r"/customers/([^/]+)", "customers_delete", "customers.delete"),
    ("GET", r"/contacts", "contacts_list", None),
    ("POST", r"/contacts", "contacts_create", "contacts.create"),
    ("GET", r"/contacts/([^/]+)", "contacts_get", None),
    ("PUT", r"/contacts/([^/]+)", "contacts_update", "contacts.update"),
    ("DELETE", r"/contacts/([^/]+)", "contacts_delete", "contacts.delete"),
    ("GET", r"/products", "products_list", None),
    ("POST", r"/products", "products_create", "products.create"),
    ("GET", r"/products/([^/]+)", "products_get", None),
    ("PUT", r"/products/([^/]+)", "products_update", "products.update"),
    ("GET", r"/tickets", "tickets_list", None),
    ("POST", r"/tickets", "tickets_create", "tickets.create"),
    ("GET", r"/tickets/settings", "tickets_settings", None),
    ("GET", r"/tickets/([^/]+)", "tickets_get", None),
    ("PUT", r"/tickets/([^/]+)", "tickets_update", "tickets.update"),
    ("DELETE", r"/tickets/([^/]+)", "tickets_delete", "tickets.delete"),
    ("GET", r"/tickets/([^/]+)/comments", "tickets_comments", None),
    ("POST", r"/tickets/([^/]+)/comment", "tickets_comment", "tickets.comment"),
    ("GET", r"/invoices", "invoices_list", None),
    ("POST", r"/invoices", "invoices_create", "invoices.create"),
    ("GET", r"/invoices/([^/]+)", "invoices_get", None),
    ("PUT", r"/invoices/([^/]+)", "invoices_update", "invoices.update"),
    ("DELETE", r"/invoices/([^/]+)", "invoices_delete", "invoices.delete"),
    ("GET", r"/invoices/([^/]+)/ticket", "invoices_ticket", None),
    ("POST", r"/invoices/([^/]+)/line_items", "invoices_add_line_item", "invoices.line_item_create"),
    ("PUT", r"/invoices/([^/]+)/line_items/([^/]+)", "invoices_update_line_item", "invoices.line_item_update"),
    ("DELETE", r"/invoices/([^/]+)/line_items/([^/]+)", "invoices_delete_line_item",
     "invoices.line_item_delete"),
    ("GET", r"/schedules", "schedules_list", None),
    ("POST", r"/schedules", "schedules_create", "schedules.create"),
    ("GET", r"/schedules/([^/]+)", "schedules_get", None),
    ("PUT", r"/schedules/([^/]+)", "schedules_update", "schedules.update"),
    ("DELETE", r"/schedules/([^/]+)", "schedules_delete", "schedules.delete"),
    ("POST", r"/schedules/([^/]+)/add_line_item", "schedules_add_line_item", "schedules.line_item_create"),
    ("POST", r"/schedules/([^/]+)/remove_line_item", "schedules_remove_line_item",
     "schedules.line_item_delete"),
    ("PUT", r"/schedules/([^/]+)/line_items/([^/]+)", "schedules_update_line_item",
     "schedules.line_item_update"),
]
_COMPILED = [(m, re.compile(p + r"/?"), op, kind) for m, p, op, kind in ROUTES]


def route(method, path):
    """Path below /api/v1 -> (op, args, write kind) or None (Rails routing error)."""
    if method == "PATCH":
        method = "PUT"
    for m, rx, op, kind in _COMPILED:
        if m == method:
            mt = rx.fullmatch(path)
            if mt:
                return op, mt.groups(), kind
    return None
