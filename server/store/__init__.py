"""The tables and the SQL outside loaders: engine, models, writes, migrations, demo data."""
