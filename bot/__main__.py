"""`python -m bot`: start the bot."""

from bot.app import main

if __name__ == "__main__":
    main()
