"""LLM-as-judge helpers: read a judge's messy reply (parse) and fence the judged text (fence)."""
