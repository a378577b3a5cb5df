"""The model files the command-line tests write and load by path (`relaxml predict`,
`relaxml annotate`, local and on Ray): the sentiment config, and what every such file starts
with: the imports, `choice`, and `Good`, positive for every task."""

from __future__ import annotations

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text">
    <Choice value="positive"/><Choice value="negative"/>
  </Choices>
</View>"""

PRELUDE = '''
import os, time
from relaxml import LabelStudioModel, Prediction

def choice(value, **fields):
    return Prediction(result=[{"from_name": "sentiment", "to_name": "text", "type": "choices",
                               "value": {"choices": [value]}}], **fields)

class Good(LabelStudioModel):
    """Positive for every task; sleeps RELAXML_TEST_SLEEP seconds per call."""
    model_version = "a-1"
    max_batch_size = 4
    def predict(self, tasks, context):
        time.sleep(float(os.environ.get("RELAXML_TEST_SLEEP", "0")))
        return [choice("positive") for task in tasks]
'''
