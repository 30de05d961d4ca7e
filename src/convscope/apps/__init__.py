"""Example apps built on convscope's library: ``streamlit_app.py``, run by ``convscope streamlit`` (the streamlit
extra). Nothing here is imported by the rest of convscope."""
