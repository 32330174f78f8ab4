-- Applied to tansu's SQLite file before tansu starts (deploy/local/up.sh and
-- the end-to-end harness): tansu 0.6 looks up the headers of every record it
-- serves with a join on `header (topition, offset_id)` (tansu-storage 0.6.0,
-- src/sql/header_fetch.sql), and its `header` table has no index
-- (src/ddl/040-header.sql), so SQLite scans every stored header once per
-- record fetched: reading a topic whose records carry headers (distans'
-- valid lines carry `distans.pseudonym_key_version`) slows down with its
-- size until consumers time out (issue 12's load run: 0 records read for
-- minutes at 100 k lines). `EXPLAIN QUERY PLAN` of that query: "SCAN h"
-- without the index, "SEARCH h USING INDEX header_topition_offset" with it.
-- The table is tansu's own DDL, unchanged: tansu's `create table if not
-- exists` then leaves it as it is. Apache Kafka keeps headers inside the
-- record batch and needs nothing of the kind.
create table if not exists header (
    topition integer,
    offset_id integer,
    k blob,
    v blob,
    last_updated datetime default current_timestamp not null,
    created_at datetime default current_timestamp not null,
    foreign key (topition, offset_id) references record (topition, offset_id) on delete cascade
);
create index if not exists header_topition_offset on header (topition, offset_id);
