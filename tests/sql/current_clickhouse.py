"""Runs distans's SQL on a current ClickHouse release, in process (chDB).

The ClickHouse that installs on these machines is 18.16; production runs a
current release. The end-to-end tests run every statement on 18.16; this
script runs the same files on the ClickHouse inside chdb-core (26.x):
the migrations (the copy of migration 8 over rows written before it), a
month's aggregate refresh, and every report panel's query over a few known
rows, checking the figures, not only that they parse: each line identity
once, in its latest version; and that readonly=1 (the BI user's profile)
still runs the panels and refuses url(), remote(), file() and SET.

usage: python current_clickhouse.py REPO_ROOT SQL_JSON
SQL_JSON: {"views": [file names in crates/store/views, in the order the
store creates them], "panels": [each panel's id and SQL]}.
Exit status 0 when every statement ran and every check held.
"""
import json
import sys
import tempfile
from pathlib import Path

from chdb import session

root = Path(sys.argv[1])
given = json.loads(Path(sys.argv[2]).read_text())
panels = given["panels"]
view_files = given["views"]


def statements(sql):
    """Like distans_store::statements: comment lines dropped, split on ';'."""
    body = "\n".join(l for l in sql.splitlines() if not l.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


db = session.Session(tempfile.mkdtemp(prefix="distans-chdb-"))
version = db.query("SELECT version()", "CSV").bytes().decode().strip()
db.query("CREATE DATABASE IF NOT EXISTS distans")
db.query("USE distans")


def run(sql, fmt="CSV"):
    try:
        return db.query(sql, fmt).bytes().decode()
    except Exception as e:  # chdb raises with ClickHouse's message
        raise SystemExit(f"ClickHouse {version} refused:\n{sql[:2000]}\n--> {e}")


store = root / "crates/store"
migrations = sorted((store / "migrations").glob("*.sql"))
# The lines table changed in migration 8 (invoice_line_versions, keyed by the
# line's identity, with a version): rows written before it are copied by it.
copy = next(i for i, path in enumerate(migrations) if path.name == "0008_invoice_line_versions.sql")


def migrate(paths):
    for path in paths:
        for s in statements(path.read_text()):
            run(s)


migrate(migrations[:copy])

# Known rows: three lines of one patient listed at two health centres in
# turn, one unlisted patient with a finding, a credit note, 20 % carried by
# the health centre. Written before migration 8, in invoice_lines: line 2
# also in an older version (input offset 1) with another buyer, which
# invoice_lines kept as a second line; the copy keeps only the later.
columns = """(invoice_id, line_number, invoice_type, seller_org_number, buyer_org_number,
    patient_pseudonym, patient_county_code, visit_date, provider_org_number, provider_name,
    profession_code, initiative, age_group, sex, quantity, gross_amount_ore, net_amount_ore,
    signed_net_amount_ore, patient_fee_ore, diagnosis_codes, source_offset, inserted_at"""
run(f"""INSERT INTO invoice_lines {columns}) VALUES
    ('ZVF23210000402503000001', 2, 'invoice', '2321000040', '2321000255', 'p2', '19', '2025-03-05', '5560000001',
     'Kry', 'PS', 'referral', '19-39', 'male', 1, 42500, 42500, 42500, 0, [], 1, now()),
    ('ZVF23210000402503000001', 1, 'invoice', '2321000040', '2321000198', 'p1', '19', '2025-03-04', '5560000001',
     'Kry', 'LK', 'own_initiative', '19-39', 'female', 1, 50000, 50000, 50000, 0, ['F43.1'], 2, now()),
    ('ZVF23210000402503000001', 2, 'invoice', '2321000040', '2321000198', 'p2', '19', '2025-03-05', '5560000001',
     'Kry', 'PS', 'referral', '19-39', 'male', 1, 42500, 42500, 42500, 0, [], 3, now()),
    ('ZVF23210000402503900001', 1, 'credit_note', '2321000040', '2321000198', 'p1', '19', '2025-03-20',
     '5560000001', 'Kry', 'LK', 'own_initiative', '19-39', 'female', 1, 50000, 50000, -50000, 0, ['J06.9'], 4,
     now())""")
migrate(migrations[copy:])
views = 0
for name in view_files:
    for s in statements((store / "views" / name).read_text()):
        run(s)
        views += 1

# Written after migration 8, by the sink: line 3, first in February (input
# offset 5), then corrected to 20 March (offset 6); the later version is the
# line. Inserted in the other order: the version decides, not the insert.
run(f"""INSERT INTO invoice_line_versions {columns}, version) VALUES
    ('ZVF23210000402503000001', 3, 'invoice', '2321000040', '2321000198', 'p1', '19', '2025-03-20', '5560000001',
     'Kry', 'LK', 'own_initiative', '19-39', 'female', 1, 50000, 50000, 50000, 0, ['J06.9'], 6, now(), 6)""")
run(f"""INSERT INTO invoice_line_versions {columns}, version) VALUES
    ('ZVF23210000402503000001', 3, 'invoice', '2321000040', '2321000198', 'p1', '19', '2025-02-20', '5560000001',
     'Kry', 'LK', 'own_initiative', '19-39', 'female', 1, 70000, 70000, 70000, 0, ['J06.9'], 5, now(), 5)""")
got = run("""SELECT invoice_id, line_number, buyer_org_number, visit_date, net_amount_ore, version
    FROM invoice_lines_current ORDER BY invoice_id, line_number""")
want = ('"ZVF23210000402503000001",1,"2321000198","2025-03-04",50000,2\n'
        '"ZVF23210000402503000001",2,"2321000198","2025-03-05",42500,3\n'
        '"ZVF23210000402503000001",3,"2321000198","2025-03-20",50000,6\n'
        '"ZVF23210000402503900001",1,"2321000198","2025-03-20",50000,4\n')
if got != want:
    raise SystemExit(f"invoice_lines_current on ClickHouse {version}:\n{got}\nwanted:\n{want}")
run("""INSERT INTO listing_register VALUES
    (1, '19', 'p1', 'SE1', 'VC Ett', '5560000009', 'Grupp A', 1990, 'female', '2025-01-01', '2025-03-10'),
    (1, '19', 'p1', 'SE2', 'VC Två', '5560000009', 'Grupp B', 1990, 'female', '2025-03-11', '2149-06-06'),
    (1, '19', 'p3', 'SE2', 'VC Två', '5560000009', 'Grupp B', 1950, 'male', '2020-01-01', '2149-06-06')""")
run("INSERT INTO listing_imports VALUES (1, '19', 'listing.csv', '00', 3, 2, 2, now())")
loaded = "toDateTime('2026-01-01 00:00:00')"
run(f"INSERT INTO ref_cost_allocation VALUES ('19', '2020-01-01', '2149-06-06', 20, {loaded})")
run(f"INSERT INTO ref_provider_groups VALUES ('5560000001', 'Grupp B', {loaded})")
run(f"INSERT INTO ref_parameters VALUES ('peer_min_contacts', 1, {loaded}), ('peer_min_providers', 3, {loaded}), "
    f"('peer_threshold', 3.5, {loaded})")
run(f"INSERT INTO ref_regions VALUES ('2321000198', '19', 'Region Västmanland', {loaded})")
run(f"INSERT INTO ref_loads VALUES ({loaded})")
run("""INSERT INTO anomalies (finding_id, rule_id, line_key, buyer_org_number, visit_date, amount_at_stake_ore)
    VALUES ('f1', 'wrong_price', 'ZVF23210000402503000001:2', '2321000198', '2025-03-05', 42500)""")

refresh = (store / "sql/refresh_month.sql").read_text().replace("{month}", "2025-03-01") \
    .replace("{staging}", "agg_monthly_staging")
for s in statements(refresh):
    run(s)
run("ALTER TABLE agg_monthly REPLACE PARTITION 202503 FROM agg_monthly_staging")

got = run("""SELECT listing_unit_hsa_id, sum(contacts), sum(net_amount_ore), sum(health_centre_ore),
    sum(central_ore), sum(flagged_net_ore) FROM agg_monthly GROUP BY listing_unit_hsa_id
    ORDER BY listing_unit_hsa_id""")
want = '"",1,42500,0,42500,42500\n"SE1",1,50000,10000,40000,0\n"SE2",0,0,0,0,0\n'
if got != want:
    raise SystemExit(f"aggregates on ClickHouse {version}:\n{got}\nwanted:\n{want}")

# Kry's group runs VC Två, where p1 is listed from 11 March: one contact
# there (and its credit note) is a same-group listing.
got = run("SELECT listing_unit_hsa_id, contacts, net_amount_ore FROM report_same_group_listing")
if got != '"SE2",0,0\n':
    raise SystemExit(f"report_same_group_listing on ClickHouse {version}: {got!r}")

for panel in panels:
    sql = panel["sql"].replace("${buyer}", "2321000198").replace("${year}", "2025") \
        .replace("${provider}", "").replace("${rule}", "")
    run(sql)

# Grafana's variables: the region selector shows names.
for name, sql in given.get("variables", []):
    got = run(sql)
    if name == "buyer" and "Region Västmanland (2321000198)" not in got:
        raise SystemExit(f"the region variable has no name: {got}")

# The BI user's profile (deploy/clickhouse/users.d/bi.xml) is readonly=1:
# on this release too, the panels run, and table functions that reach
# outside and raising a limit are refused. chdb has no users, so the
# profile's constraints, grants and quota are not checked here.
run("SET readonly = 1")
for panel in panels:
    run(panel["sql"].replace("${buyer}", "2321000198").replace("${year}", "2025")
        .replace("${provider}", "").replace("${rule}", ""))
for sql in ["SELECT * FROM url('http://127.0.0.1:9/', TSV, 'x String')",
            "SELECT * FROM remote('127.0.0.1:9', system.one, 'default', '')",
            "SELECT * FROM file('/etc/hostname', TSV, 'x String')",
            "SET max_memory_usage = 100000000000",
            "SELECT 1 SETTINGS max_memory_usage = 100000000000"]:
    try:
        db.query(sql, "CSV")
    except Exception as e:
        if "READONLY" not in str(e):
            raise SystemExit(f"readonly=1 on ClickHouse {version}: {sql}: {e}")
    else:
        raise SystemExit(f"readonly=1 on ClickHouse {version} allowed: {sql}")

print(f"ClickHouse {version}: {len(migrations)} migrations, {views} views, the aggregate refresh and "
      f"{len(panels)} report queries ran; aggregates as expected; readonly=1 refuses url, remote, file and SET")
