"""callbridge: answer Twilio phone calls with an OpenAI Realtime voice agent."""

__version__ = "0.1.0"
