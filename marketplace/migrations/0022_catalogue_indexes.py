"""The catalogue's indexes: partial btree indexes on published listings, one per ordering (both databases),
and on PostgreSQL the full-text and trigram search (marketplace/selectors/catalogue.py):

- `search_vector`: a stored generated tsvector, title weighted A over description B, `simple` configuration.
  The model does not declare it (SQLite has no tsvector); Django never writes it, PostgreSQL keeps it current.
- a GIN index on it for published rows; a GIN trigram index on published titles (pg_trgm).

`CREATE EXTENSION pg_trgm` needs a role allowed to create extensions (a superuser, or on PostgreSQL 13+ the
database owner, pg_trgm being a trusted extension); docs/operations.md says so.
"""

from typing import Any

from django.db import migrations, models

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """ALTER TABLE marketplace_dataset ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
         setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A')
         || setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'B')) STORED""",
    "CREATE INDEX dataset_pub_search_idx ON marketplace_dataset USING gin (search_vector) WHERE status = 'published'",
    "CREATE INDEX dataset_pub_title_trgm_idx ON marketplace_dataset USING gin (title gin_trgm_ops) "
    "WHERE status = 'published'",
]
BACKWARD = [
    "DROP INDEX IF EXISTS dataset_pub_title_trgm_idx",
    "DROP INDEX IF EXISTS dataset_pub_search_idx",
    "ALTER TABLE marketplace_dataset DROP COLUMN IF EXISTS search_vector",
]


def _run(statements: list[str]) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('marketplace', '0021_listing_files_samples'),
    ]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('status', 'published')), fields=['published_at', 'id'], name='dataset_pub_published_idx'),
        ),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('status', 'published')), fields=['created_at', 'id'], name='dataset_pub_created_idx'),
        ),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('status', 'published')), fields=['price', 'id'], name='dataset_pub_price_idx'),
        ),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('status', 'published')), fields=['currency', 'price', 'id'], name='dataset_pub_cur_price_idx'),
        ),
        migrations.AddIndex(
            model_name='dataset',
            index=models.Index(condition=models.Q(('status', 'published')), fields=['title', 'id'], name='dataset_pub_title_idx'),
        ),
    ]
