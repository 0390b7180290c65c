"""The HTTP edge, beside handlers/: the bot process's own HTTP server and its routes (health,
metrics, the Telegram webhook; later the web console and the public API), each as thin as a
handler over the same use cases."""
