"""Plain server-rendered HTML pages for customers (no Streamlit on their side), served by server.py."""
