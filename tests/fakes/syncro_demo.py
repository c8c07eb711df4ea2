"""syncro_demo: the fake Syncro's demo data set (`--data demo`, POST /_fake/reset {"data":"demo"}).

Three customers whose contacts overlap the fake Graph demo tenants by e-mail
(contoso.com, fabrikam.com, northwindtraders.com), so adoption of existing
contacts by e-mail can be shown; one duplicate-email pair (Lee Gu at Contoso)
to show a conflict; contacts without e-mail or from other domains that a sync
must leave alone; a small product catalog (Microsoft 365 SKUs and services),
one recurring schedule, one invoice and two tickets.

Ids are explicit so tests and the demo script can name them.
"""

DEMO = {
    "products": [
        {"id": 501, "name": "Microsoft 365 Business Basic", "description": "M365 Business Basic, per user / month",
         "price_retail": 6.00, "price_cost": 5.40, "taxable": True, "product_category": "Microsoft 365",
         "upc_code": "O365_BUSINESS_ESSENTIALS"},
        {"id": 502, "name": "Microsoft 365 Business Standard", "description": "M365 Business Standard, per user / month",
         "price_retail": 12.50, "price_cost": 11.25, "taxable": True, "product_category": "Microsoft 365",
         "upc_code": "O365_BUSINESS_PREMIUM"},
        {"id": 503, "name": "Microsoft 365 Business Premium", "description": "M365 Business Premium, per user / month",
         "price_retail": 22.00, "price_cost": 19.80, "taxable": True, "product_category": "Microsoft 365",
         "upc_code": "SPB"},
        {"id": 504, "name": "Exchange Online (Plan 1)", "description": "Exchange Online Plan 1, per user / month",
         "price_retail": 4.00, "price_cost": 3.60, "taxable": True, "product_category": "Microsoft 365",
         "upc_code": "EXCHANGESTANDARD"},
        {"id": 505, "name": "Managed User", "description": "Managed services, per user / month",
         "price_retail": 45.00, "price_cost": 0, "taxable": False, "product_category": "Services"},
    ],
    "customers": [
        {"id": 101, "business_name": "Contoso Ltd", "firstname": "Megan", "lastname": "Bowen",
         "email": "billing@contoso.com", "phone": "425-555-0100", "address": "1 Microsoft Way",
         "city": "Redmond", "state": "WA", "zip": "98052"},
        {"id": 102, "business_name": "Fabrikam Inc", "firstname": "Patti", "lastname": "Fernandez",
         "email": "accounts@fabrikam.com", "phone": "206-555-0142", "address": "500 Pine St",
         "city": "Seattle", "state": "WA", "zip": "98101"},
        {"id": 103, "business_name": "Northwind Traders", "firstname": "Nancy", "lastname": "Davolio",
         "email": "office@northwindtraders.com", "phone": "503-555-0199", "address": "908 W Capital Way",
         "city": "Tacoma", "state": "WA", "zip": "98401"},
    ],
    "contacts": [
        # Contoso: matches by e-mail (one with different case), a duplicate pair, others.
        {"id": 1001, "customer_id": 101, "name": "Adele Vance", "email": "adele.vance@contoso.com",
         "phone": "425-555-0109", "title": "Retail Manager"},
        {"id": 1002, "customer_id": 101, "name": "Megan Bowen", "email": "megan.bowen@contoso.com",
         "phone": "425-555-0107", "title": "Marketing Manager"},
        {"id": 1003, "customer_id": 101, "name": "Alex W.", "email": "Alex.Wilber@Contoso.com",
         "mobile": "425-555-0111", "notes": "Name and case differ from Entra on purpose"},
        {"id": 1004, "customer_id": 101, "name": "Lee Gu", "email": "lee.gu@contoso.com",
         "title": "Director"},
        {"id": 1005, "customer_id": 101, "name": "Lee Gu (old)", "email": "lee.gu@contoso.com",
         "notes": "Duplicate e-mail: conflict demo"},
        {"id": 1006, "customer_id": 101, "name": "Front Desk", "phone": "425-555-0100",
         "notes": "Shared phone, no e-mail"},
        {"id": 1007, "customer_id": 101, "name": "Pat Outside (CPA)", "email": "pat@outside-cpa.example",
         "notes": "External accountant, not in Entra"},
        # Also match users of the fake Graph demo tenants as generated today (fake_graph --seed 1).
        {"id": 1008, "customer_id": 101, "name": "Pradeep Meyer", "email": "Pradeep.Meyer@contoso.com"},
        # Fabrikam
        {"id": 1015, "customer_id": 102, "name": "Allan O'Brien", "email": "allan.obrien@fabrikam.com",
         "title": "Consultant"},
        {"id": 1011, "customer_id": 102, "name": "Patti Fernandez", "email": "patti.fernandez@fabrikam.com",
         "title": "President"},
        {"id": 1012, "customer_id": 102, "name": "Isaiah Langer", "email": "isaiah.langer@fabrikam.com",
         "phone": "206-555-0150"},
        {"id": 1013, "customer_id": 102, "name": "Fabrikam Reception", "email": "reception@fabrikam.com",
         "notes": "Shared mailbox"},
        {"id": 1014, "customer_id": 102, "name": "Jordan Smith", "email": "j.smith@litware.example",
         "notes": "Vendor contact"},
        # Northwind
        {"id": 1021, "customer_id": 103, "name": "Nancy Davolio", "email": "nancy.davolio@northwindtraders.com",
         "title": "Sales Representative"},
        {"id": 1022, "customer_id": 103, "name": "Andrew Fuller", "email": "andrew.fuller@northwindtraders.com",
         "title": "Vice President, Sales"},
        {"id": 1023, "customer_id": 103, "name": "Janet Leverling", "email": "janet.leverling@example.net",
         "notes": "Personal address"},
        {"id": 1024, "customer_id": 103, "name": "Henrietta de Vries",
         "email": "henrietta.devries@northwindtraders9162.onmicrosoft.com"},
    ],
    "tickets": [
        {"id": 5001, "number": 1001, "customer_id": 101, "subject": "Outlook keeps asking for password",
         "problem_type": "Email", "status": "New", "contact_id": 1001,
         "comments": [{"subject": "Initial Issue", "body": "Started after the password change.",
                       "hidden": False}]},
        {"id": 5002, "number": 1002, "customer_id": 102, "subject": "New hire onboarding",
         "problem_type": "Onboarding", "status": "In Progress",
         "comments": [{"subject": "Initial Issue", "body": "Account for the new sales rep.", "hidden": True}]},
    ],
    "schedules": [
        {"id": 301, "customer_id": 101, "name": "Contoso monthly Microsoft 365", "frequency": "Monthly",
         "next_run": "2026-12-01", "paused": True,
         "lines": [{"product_id": 503, "quantity": 4}, {"product_id": 505, "quantity": 4}]},
    ],
    "invoices": [
        {"id": 7001, "customer_id": 103, "number": "1001", "date": "2026-11-01",
         "line_items": [{"product_id": 501, "quantity": 3}]},
    ],
}
