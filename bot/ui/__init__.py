"""Pure renderers: Block Kit messages, modals and the Markdown postmortem."""
